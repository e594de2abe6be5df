"""`sweep resume`: finish a sweep whose driver died (SIGKILL, power loss, a lost head node).

Tune restores its experiment (unfinished trials go on from their last checkpoints, with the
same trial ids), the searcher (Optuna's study, its zombie trials failed) and the callbacks'
state (progress and each trial's score, and ASHA's rungs through `SchedulerMemory`). The
driver first sends what the dead one's journal still owed MLflow; each resumed trial's run
is found by its trial id and goes on there, skipping the epochs it has; the sweep's parent
run and catalog row are reopened, then closed as a new sweep's are.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from trialforge.catalog import Catalog, SweepState, catalog_exists
from trialforge.errors import NotFoundError, TrialforgeError
from trialforge.home import Home, resolve_home
from trialforge.search.inputs import Prepared
from trialforge.search.liveness import process_alive, this_process
from trialforge.search.phases import Phases
from trialforge.search.progress import Progress
from trialforge.search.runtime import start_ray_soon
from trialforge.search.sweep import SweepResult, SweepRun, drive_sweep
from trialforge.spec import parse_spec
from trialforge.tracking import TrackingTarget
from trialforge.train.contract import CHECKPOINT_FILE, CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)


class NothingToResumeError(TrialforgeError):
    """The sweep already finished: there is nothing left to run."""

    exit_code = 0


class SweepStillRunningError(TrialforgeError):
    """The sweep's driver is alive: resuming would run its trials twice."""


def resume_sweep(
    sweep_id: str,
    home: Home | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> SweepResult:
    """Finish the sweep `sweep_id` (an id or a unique prefix) from where its driver stopped.

    Raises `NotFoundError` for an unknown id, `NothingToResumeError` for a finished sweep
    and `SweepStillRunningError` while its driver is alive.
    """
    home = home or resolve_home()
    if not catalog_exists(home.db_url):
        raise NotFoundError(f"no sweep {sweep_id!r}: no sweep has run in {home.root} yet")
    catalog = Catalog(home.db_url)
    try:
        record = catalog.get_sweep(sweep_id)
        if record.state == SweepState.FINISHED.value:
            raise NothingToResumeError(
                f"sweep {record.id} already finished (best {record.metric} "
                f"{record.best_value}); nothing to resume")
        if record.state == SweepState.RUNNING.value and process_alive(record.driver):
            pid = (record.driver or "").split(":")[1]
            raise SweepStillRunningError(
                f"sweep {record.id} is still running (driver pid {pid}); stop it first "
                "(Ctrl-C, or `trialforge job stop` for a cluster job), then resume")
        spec = parse_spec(yaml.safe_load(record.spec_yaml), source=f"the spec of sweep {record.id}")
        catalog.update_sweep(record.id, state=SweepState.RUNNING.value, finished_at=None,
                             error=None, driver=this_process())
    except BaseException:
        catalog.close()
        raise
    start_ray_soon(spec)
    experiment = record.ray_storage_path or f"{home.ray_results}/{record.id}"
    if "://" not in experiment:  # a local folder (or one every node mounts)
        restore_missing_checkpoints(Path(experiment))
    target = None
    if record.mlflow_parent_run_id and record.mlflow_experiment_id:
        target = TrackingTarget(home.tracking_uri, record.mlflow_experiment_id,
                                record.mlflow_parent_run_id, record.id)
    run = SweepRun(
        spec, home, catalog, record.id, experiment, Phases(), Prepared(),
        track=target is not None, resumed=True, target=target,
    )
    return drive_sweep(run, on_progress)


def restore_missing_checkpoints(experiment: Path) -> int:
    """Give each unfinished trial the checkpoint Tune will restore it from; return how many
    needed it.

    Tune saves its experiment state every few checkpoints, and deletes a trial's older
    checkpoints as new ones come (it keeps the best and the latest). After a crash, the
    state may name a checkpoint that is gone; Tune would then fail the trial. The newest
    loadable checkpoint takes its place (hard links, no copy): the trial resumes from
    there, losing nothing but the epoch in flight.
    """
    states = sorted(experiment.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return 0
    repaired = 0
    for trial_json, metadata_json in json.loads(states[-1].read_text())["trial_data"]:
        trial, metadata = json.loads(trial_json), json.loads(metadata_json)
        name = (metadata.get("last_result") or {}).get("checkpoint_dir_name")
        folder = experiment / str(trial.get("relative_logdir") or "")
        if trial.get("status") == "TERMINATED" or not name or (folder / name).exists():
            continue
        newest = _newest_loadable(folder)
        if newest is None:
            logger.warning("trial %s has no checkpoint left to resume from", trial["trial_id"])
            continue
        shutil.copytree(newest, folder / name, copy_function=os.link)
        repaired += 1
    return repaired


def _newest_loadable(folder: Path) -> Path | None:
    """The trial's newest checkpoint that loads (the last may be half-written)."""
    for candidate in sorted(folder.glob("checkpoint_*"), reverse=True):
        try:
            load_checkpoint(candidate / CHECKPOINT_FILE)
        except CheckpointError:
            continue
        return candidate
    return None
