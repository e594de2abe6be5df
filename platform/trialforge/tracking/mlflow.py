"""MLflow runs of a sweep: one parent run per sweep, one nested child run per trial.

Writers are split so no fact has two: the trial (in-process trainable or rank 0) writes its
run's params, per-epoch metrics (one batched call per epoch) and best checkpoint; the driver
creates the parent run and sets how each trial ended, which it alone knows (a trial stopped
by the scheduler or killed with its worker cannot say so itself).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

TAG_SWEEP = "trialforge.sweep_id"
TAG_TRIAL = "trialforge.trial_id"
TAG_KIND = "trialforge.kind"  # "sweep" or "trial"
TAG_STATE = "trialforge.state"
TAG_REASON = "trialforge.reason"
TAG_BEST_EPOCH = "trialforge.best_epoch"
TAG_NODE = "trialforge.node_id"  # the Ray node a trial (or its rank 0) ran on
BEST_CHECKPOINT_DIR = "best_checkpoint"
PARETO_FRONT_FILE = "pareto_front.json"
# A metric every epoch of every task logs: its last step is the last epoch logged.
EPOCH_MARKER = "epoch_seconds"

# How each trial state ends its MLflow run.
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
    """Where a trial logs: small and picklable, shipped to every trial."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str


class TrialRun:
    """The child run of one trial, seen from the trial's single writer.

    Epochs a resumed trial trains again (up to `logged_epochs`) are not logged twice: the
    loop is seeded per epoch, so their values would be the same.
    """

    def __init__(self, client: MlflowClient, run_id: str, logged_epochs: int = 0) -> None:
        self.client = client
        self.run_id = run_id
        self.logged_epochs = logged_epochs

    @classmethod
    def open(
        cls,
        target: TrackingTarget,
        trial_id: str,
        trial_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
    ) -> TrialRun:
        """Reuse the run of `trial_id` if Ray restarted the trial, else create it (with
        `params`, and `tags` such as the backbone's lineage)."""
        client = MlflowClient(target.tracking_uri)
        existing = client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
            f"and tags.`{TAG_TRIAL}` = '{trial_id}'",
            max_results=1,
        )
        if existing:
            run_id = existing[0].info.run_id
            client.update_run(run_id, status="RUNNING")
            history = client.get_metric_history(run_id, EPOCH_MARKER)
            return cls(client, run_id, max((m.step for m in history), default=0))
        run = client.create_run(
            target.experiment_id,
            run_name=trial_name,
            tags={
                MLFLOW_PARENT_RUN_ID: target.parent_run_id,
                TAG_SWEEP: target.sweep_id,
                TAG_TRIAL: trial_id,
                TAG_KIND: "trial",
                TAG_STATE: "running",
                **(tags or {}),
            },
        )
        params_list = [Param(key, _param_value(value)) for key, value in params.items()]
        for start in range(0, len(params_list), 100):  # MLflow takes 100 params per batch
            client.log_batch(run.info.run_id, params=params_list[start : start + 100])
        return cls(client, run.info.run_id)

    @classmethod
    def attach(cls, tracking_uri: str, run_id: str) -> TrialRun:
        """The run a trial's driver opened, for the worker of rank 0 that logs to it."""
        client = MlflowClient(tracking_uri)
        history = client.get_metric_history(run_id, EPOCH_MARKER)
        return cls(client, run_id, max((m.step for m in history), default=0))

    def log_epochs(self, epochs: Iterable[tuple[int, Mapping[str, float], int]]) -> None:
        """(epoch, metrics, timestamp in ms) of several epochs in one call; epochs logged
        already are skipped."""
        batch = [
            Metric(key, float(value), timestamp, epoch)
            for epoch, metrics, timestamp in epochs
            if epoch > self.logged_epochs
            for key, value in metrics.items()
        ]
        for start in range(0, len(batch), 1000):  # MLflow takes 1,000 metrics per call
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])
        if batch:
            self.logged_epochs = max(metric.step for metric in batch)

    def log_best_checkpoint(
        self, path: Path, epoch: int, images: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Replace the run's best checkpoint with the one at `path`, and its epoch's images
        (`NAME.png` at the artifact root: a confusion matrix, GAN samples)."""
        self.client.log_artifact(self.run_id, str(path), BEST_CHECKPOINT_DIR)
        for name, image in (images or {}).items():
            self.client.log_image(self.run_id, image, artifact_file=f"{name}.png")
        self.client.set_tag(self.run_id, TAG_BEST_EPOCH, str(epoch))

    def end(self, state: str, reason: str | None = None) -> None:
        """Record how the trial ended (the driver does it for trials that cannot)."""
        end_run(self.client, self.run_id, state, reason)


class SweepTracker:
    """The driver's side of tracking: experiment, parent run, and how trials ended."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        # Creating the store here, before any trial runs, matters: several processes creating
        # a fresh sqlite database at once fail ("duplicate column name").
        self.client = MlflowClient(tracking_uri)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; a client holds locks.
        return {"tracking_uri": self.tracking_uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tracking_uri"])  # type: ignore[misc]

    def start(
        self, experiment: str, sweep_id: str, spec_yaml: str, artifact_root: Path | None
    ) -> TrackingTarget:
        """Create (or reuse) the experiment and open the sweep's parent run."""
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            location = (artifact_root / experiment).as_uri() if artifact_root else None
            experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        run = self.client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_id}",
            tags={TAG_SWEEP: sweep_id, TAG_KIND: "sweep", TAG_STATE: "running"},
        )
        self.client.log_text(run.info.run_id, spec_yaml, "spec.yaml")
        return TrackingTarget(self.tracking_uri, experiment_id, run.info.run_id, sweep_id)

    def end_trial(self, run_id: str, state: str, reason: str | None = None) -> None:
        """Record how a trial ended: its state tag, reason and the run's terminal status."""
        end_run(self.client, run_id, state, reason)

    def trial_run_id(self, target: TrackingTarget, trial_id: str) -> str | None:
        runs = self.client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
            f"and tags.`{TAG_TRIAL}` = '{trial_id}'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def wait_for_best_checkpoint(self, run_id: str, epoch: int, timeout_s: float = 30.0) -> None:
        """Wait until the run's best checkpoint is the one of `epoch`: a trial the scheduler
        stopped uploads it as it winds down, possibly just after the sweep's last result."""
        deadline = time.monotonic() + timeout_s
        while self.client.get_run(run_id).data.tags.get(TAG_BEST_EPOCH) != str(epoch):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} has no checkpoint of its best epoch {epoch} after "
                    f"{timeout_s:.0f} s: the trial's process ended before it could upload it"
                )
            time.sleep(0.2)

    def open_trial_runs(self, target: TrackingTarget) -> dict[str, str]:
        """Trial id -> run id of every child run still RUNNING."""
        runs = self.client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
            f"and tags.`{TAG_KIND}` = 'trial' and attributes.status = 'RUNNING'",
        )
        return {run.data.tags.get(TAG_TRIAL, run.info.run_id): run.info.run_id for run in runs}

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
        multi-objective sweep's Pareto front (`pareto_front.json`)."""
        run_id = target.parent_run_id
        if pareto_front is not None:
            self.client.log_dict(run_id, pareto_front, PARETO_FRONT_FILE)  # type: ignore[arg-type]
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if _finite(v)]
        params = [Param(f"best.{k}", _param_value(v)) for k, v in best_params.items()]
        tags = {TAG_STATE: state}
        if error:
            tags[TAG_REASON] = error[:5000]
        self.client.log_batch(run_id, metrics=metrics, params=params[:100])
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        self.client.set_terminated(run_id, _RUN_STATUS.get(state, "FAILED"))


def end_run(client: MlflowClient, run_id: str, state: str, reason: str | None = None) -> None:
    """Tag a trial's run with its state (and why) and set its terminal status."""
    tags = [RunTag(TAG_STATE, state)]
    if reason:
        tags.append(RunTag(TAG_REASON, reason[:5000]))
    client.log_batch(run_id, tags=tags)
    client.set_terminated(run_id, _RUN_STATUS[state])


def _param_value(value: Any) -> str:
    return str(value)[:6000]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def numeric_metrics(result: Mapping[str, Any], keys: Iterable[str]) -> dict[str, float]:
    """The numeric entries of `result` among `keys` (NaN included: a diverged epoch)."""
    return {
        k: float(result[k])
        for k in keys
        if k in result and isinstance(result[k], (int, float)) and not isinstance(result[k], bool)
    }
