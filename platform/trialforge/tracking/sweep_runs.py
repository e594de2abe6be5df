"""MLflow runs of a sweep: one parent run per sweep, one nested child run per trial.

The driver is the only writer. `SweepTracker` opens and closes the sweep's parent run,
waiting out an outage (`outage.Patience`); the trials' runs are written by the
`recorder.TrialRecorder`, which never holds Tune's loop up.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from trialforge.tracking.outage import patience
from trialforge.tracking.tags import (
    PARETO_FRONT_FILE,
    TAG_FAILURE,
    TAG_KIND,
    TAG_REASON,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
)

# How each trial state (train.contract.TrialState) ends its MLflow run.
_RUN_STATUS = {
    "completed": "FINISHED",
    "stopped_early": "FINISHED",
    "diverged": "FAILED",
    "failed": "FAILED",
    "interrupted": "KILLED",
    # and for the parent run, how the sweep ended
    "finished": "FINISHED",
}


@dataclass(frozen=True)
class TrackingTarget:
    """The sweep's experiment and parent run, under which its trials' runs are nested."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str


class SweepTracker:
    """The sweep's experiment and parent run: opened, reopened on resume, and closed."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        # Creating the store here, before any trial runs, matters: several processes creating
        # a fresh sqlite database at once fail ("duplicate column name").
        self.client = MlflowClient(tracking_uri)
        self.patience = patience(tracking_uri)
        # MLflow prints two lines per run it ends on a tracking server; the driver ends every
        # trial's run, and the sweep's progress goes to the same terminal.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

    def start(
        self, experiment: str, sweep_id: str, spec_yaml: str, artifact_root: Path | None
    ) -> TrackingTarget:
        """Create (or reuse) the experiment and open the sweep's parent run (waiting out an
        outage: each step finds what a request whose answer was lost created)."""
        experiment_id = self.patience.call(
            f"experiment {experiment!r}", lambda: self._experiment(experiment, artifact_root))
        run_id = self.patience.call(
            f"the run of sweep {sweep_id}", lambda: self._parent_run(experiment_id, sweep_id))
        self.patience.call(f"the spec of sweep {sweep_id}",
                           lambda: self.client.log_text(run_id, spec_yaml, "spec.yaml"))
        return TrackingTarget(self.tracking_uri, experiment_id, run_id, sweep_id)

    def _experiment(self, experiment: str, artifact_root: Path | None) -> str:
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            return str(found.experiment_id)
        location = (artifact_root / experiment).as_uri() if artifact_root else None
        return str(self.client.create_experiment(experiment, artifact_location=location))

    def _parent_run(self, experiment_id: str, sweep_id: str) -> str:
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'sweep'",
            max_results=1,
        )
        if found:
            return str(found[0].info.run_id)
        return str(self.client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_id}",
            tags={TAG_SWEEP: sweep_id, TAG_KIND: "sweep", TAG_STATE: "running"},
        ).info.run_id)

    def reopen(self, target: TrackingTarget) -> TrackingTarget:
        """Mark a resumed sweep's parent run RUNNING again; its trials log under it."""

        def reopen() -> None:
            self.client.update_run(target.parent_run_id, status="RUNNING")
            self.client.set_tag(target.parent_run_id, TAG_STATE, "running")
            if TAG_REASON in self.client.get_run(target.parent_run_id).data.tags:
                self.client.delete_tag(target.parent_run_id, TAG_REASON)  # why it stopped

        self.patience.call(f"reopening the run of sweep {target.sweep_id}", reopen)
        return target

    def trial_runs(self, target: TrackingTarget) -> dict[str, tuple[str, str]]:
        """Trial id -> (run id, status) of every trial run of the sweep (paged)."""
        found: dict[str, tuple[str, str]] = {}
        token = None
        while True:
            page = self.patience.call("the trial runs", functools.partial(
                self.client.search_runs, [target.experiment_id], max_results=1000,
                page_token=token, filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
                f"and tags.`{TAG_KIND}` = 'trial'"))
            found.update({run.data.tags.get(TAG_TRIAL, run.info.run_id):
                          (run.info.run_id, run.info.status) for run in page})
            token = page.token
            if not token:
                return found

    def finish(
        self,
        target: TrackingTarget,
        state: str,
        summary: Mapping[str, float],
        best_params: Mapping[str, Any],
        error: str | None = None,
        pareto_front: list[dict[str, Any]] | None = None,
    ) -> None:
        """Close the parent run with the sweep's outcome: best metric and best params, and a
        multi-objective sweep's Pareto front (`pareto_front.json`). Every write waits out
        an outage."""
        run_id = target.parent_run_id
        # Stamped once: a repeated write then holds identical rows, which MLflow keeps once.
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if _finite(v)]
        params = [Param(f"best.{k}", param_value(v)) for k, v in best_params.items()]
        tags = {TAG_STATE: state}
        if error:
            tags[TAG_REASON] = error[:5000]

        def write() -> None:
            if pareto_front is not None:
                self.client.log_dict(run_id, pareto_front,  # type: ignore[arg-type]
                                     PARETO_FRONT_FILE)
            self.client.log_batch(run_id, metrics=metrics, params=params[:100])
            for key, value in tags.items():
                self.client.set_tag(run_id, key, value)
            self.client.set_terminated(run_id, _RUN_STATUS.get(state, "FAILED"))

        self.patience.call(f"the outcome of sweep {target.sweep_id}", write)


def end_run(
    client: MlflowClient, run_id: str, state: str, reason: str | None = None,
    failure: str | None = None, *, metrics: list[Metric] | None = None,
    tags: list[RunTag] | None = None,
) -> None:
    """Tag a trial's run with its state (and why, and its kind of failure), with any other
    `metrics` and `tags` in the same request, and set its terminal status."""
    tags = [*(tags or []), RunTag(TAG_STATE, state)]
    if reason:
        tags.append(RunTag(TAG_REASON, reason[:5000]))
    failure = failure or ("diverged" if state == "diverged" else None)
    if failure:
        tags.append(RunTag(TAG_FAILURE, failure))
    client.log_batch(run_id, metrics=metrics or [], tags=tags)
    client.set_terminated(run_id, _RUN_STATUS[state])


def param_value(value: Any) -> str:
    return str(value)[:6000]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
