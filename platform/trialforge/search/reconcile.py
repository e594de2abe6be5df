"""After the sweep: finish the MLflow record of trials whose process ended before they did.

A trial writes its own record (batched metrics, best checkpoint, how it ended), but a
process can die first: a lost worker, or a trial the scheduler stopped whose actor Tune
shut down at the end of the sweep. What it had not written is in Ray's storage: its latest
checkpoint carries the epochs MLflow lacks, and the best-scored checkpoint is kept. Trials
Ray never saw end were interrupted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ray import tune

from trialforge.tracking import SweepTracker, TrackingTarget, TrialRun
from trialforge.train.checkpoint import CHECKPOINT_FILE, CheckpointError, load_checkpoint
from trialforge.train.trial_log import PENDING_KEY, RUN_KEY

logger = logging.getLogger(__name__)


def finish_trial_records(
    results: tune.ResultGrid | None,
    tracker: SweepTracker,
    target: TrackingTarget,
    outcomes: dict[str, tuple[str, str | None]],
    metric: str,
    mode: str,
    reason: str,
) -> int:
    """Complete every trial run still RUNNING, and create those MLflow never saw (a trial
    that ran entirely while it was away); return how many needed it."""
    open_runs = tracker.open_trial_runs(target)
    known = tracker.trial_run_ids(target)
    completed = 0
    for index in range(len(results) if results is not None else 0):
        result = results[index]  # type: ignore[index]
        trial_id = str((result.metrics or {}).get("trial_id", ""))
        run_id = open_runs.pop(trial_id, None)
        run = (TrialRun.attach(target.tracking_uri, run_id) if run_id is not None
               else None if trial_id in known else _run_never_created(result, target))
        if run is None:
            continue
        _write_what_the_trial_could_not(run, result, metric, mode)
        state, why = outcomes.get(trial_id, ("interrupted", reason))
        run.end(state, why)
        completed += 1
    for run_id in open_runs.values():  # never reported a result
        TrialRun.attach(target.tracking_uri, run_id).end("interrupted", reason)
    return completed + len(open_runs)


def _run_never_created(result: tune.Result, target: TrackingTarget) -> TrialRun | None:
    """The run of a trial whose checkpoint says how to create it (it never could)."""
    if result.checkpoint is None:
        return None
    try:
        with result.checkpoint.as_directory() as folder:
            recipe = load_checkpoint(Path(folder) / CHECKPOINT_FILE).get(RUN_KEY)
    except (CheckpointError, OSError) as exc:
        logger.warning("could not read the last checkpoint of %s: %s", result.path, exc)
        return None
    return TrialRun.from_recipe(target, recipe) if recipe else None


def _write_what_the_trial_could_not(
    run: TrialRun, result: tune.Result, metric: str, mode: str
) -> None:
    try:
        if result.checkpoint is not None:
            with result.checkpoint.as_directory() as folder:
                state = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
            run.log_epochs(state.get(PENDING_KEY, []))
        best = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else None
        if best is not None:
            with best.as_directory() as folder:
                path = Path(folder) / CHECKPOINT_FILE
                run.log_best_checkpoint(path, int(load_checkpoint(path)["epoch"]))
    except (CheckpointError, OSError) as exc:
        logger.warning("could not complete the record of run %s: %s", run.run_id, exc)


def upload_missing_best_checkpoints(
    results: tune.ResultGrid, tracker: SweepTracker, target: TrackingTarget, metric: str,
    mode: str,
) -> int:
    """Upload, from Ray's storage, the best checkpoint of each trial whose run lacks one;
    return how many.

    A trial uploads its best checkpoint as it ends, so one whose process died first (a lost
    worker; a resumed sweep's trial that did not improve after the resume) has none in
    MLflow. Ray's storage keeps each trial's best-scored checkpoints.
    """
    lacking = tracker.runs_without_best_checkpoint(target)
    uploaded = 0
    for index in range(len(results)):
        result = results[index]
        run_id = lacking.get(str((result.metrics or {}).get("trial_id", "")))
        if run_id is None or not result.best_checkpoints:
            continue
        checkpoint = result.get_best_checkpoint(metric, mode)
        if checkpoint is None:
            continue
        try:
            with checkpoint.as_directory() as folder:
                path = Path(folder) / CHECKPOINT_FILE
                TrialRun.attach(tracker.tracking_uri, run_id).log_best_checkpoint(
                    path, int(load_checkpoint(path)["epoch"]))
            uploaded += 1
        except (CheckpointError, OSError) as exc:
            logger.warning("could not upload the best checkpoint of run %s: %s", run_id, exc)
    return uploaded
