"""MLflow runs of a sweep: one parent run per sweep, one nested child run per trial.

Writers are split so no fact has two: the trial (in-process trainable or rank 0) writes its
run's params, per-epoch metrics (one batched call per epoch) and best checkpoint
(`trial_run`); the driver creates the parent run and sets how each trial ended, which it
alone knows (a trial stopped by the scheduler or killed with its worker cannot say so).

MLflow may go away for a while (`outage`): a trial queues its writes and trains on (see
`courier`), the driver waits for it to come back (`Patience`), and every write can be
repeated without being recorded twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from trialforge.tracking.courier import Courier
from trialforge.tracking.outage import (
    PATIENCE_VARIABLE,
    TrackingUnavailableError,
    patience,
    reachable,
)
from trialforge.tracking.outbox import Call, Entry

logger = logging.getLogger(__name__)

TAG_SWEEP = "trialforge.sweep_id"
TAG_TRIAL = "trialforge.trial_id"
TAG_KIND = "trialforge.kind"  # "sweep" or "trial"
TAG_STATE = "trialforge.state"
TAG_REASON = "trialforge.reason"
TAG_FAILURE = "trialforge.failure"  # diverged, oom, worker_lost or code_error (train.failures)
TAG_BEST_EPOCH = "trialforge.best_epoch"
TAG_NODE = "trialforge.node_id"  # the Ray node a trial (or its rank 0) ran on
BEST_CHECKPOINT_DIR = "best_checkpoint"
PARETO_FRONT_FILE = "pareto_front.json"
# A metric every epoch of every task logs: its last step is the last epoch logged.
EPOCH_MARKER = "epoch_seconds"
METRICS_PER_CALL = 1000  # what MLflow's log_batch takes

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


class SweepTracker:
    """The driver's side of tracking: experiment, parent run, and how trials ended."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        # Creating the store here, before any trial runs, matters: several processes creating
        # a fresh sqlite database at once fail ("duplicate column name").
        self.client = MlflowClient(tracking_uri)
        self.patience = patience(tracking_uri)
        # Trials' ends are written from Tune's loop, which every trial waits on: they must not
        # wait on MLflow, so a courier sends them, in order, on its own thread.
        self._courier = Courier(tracking_uri, _send_call, "sweep driver")

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; a client holds locks.
        return {"tracking_uri": self.tracking_uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tracking_uri"])  # type: ignore[misc]

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

    def end_trial(
        self, run_id: str, state: str, reason: str | None = None, failure: str | None = None
    ) -> None:
        """Record how a trial ended: its state tag, reason, kind of failure and the run's
        terminal status.

        Returns at once: the write is sent in order behind the others, when MLflow answers
        (`drain` waits for it)."""
        self._courier.put(Call(f"the end of run {run_id}",
                               lambda: end_run(self.client, run_id, state, reason, failure)))

    def drain(self) -> None:
        """Wait until the trials' ends sent so far have arrived, for as long as an outage may
        last (`Patience`)."""
        while not self._courier.wait(self.patience.retry_s, while_away=True):
            away = self._courier.offline_since
            if away is not None and time.monotonic() - away >= self.patience.limit_s:
                raise TrackingUnavailableError(
                    f"MLflow at {self.tracking_uri} has been unreachable for "
                    f"{time.monotonic() - away:.0f} s: {self._courier.pending()} trial ends "
                    f"could not be written; start the tracking server again, or wait longer "
                    f"with {PATIENCE_VARIABLE}")

    def trial_run_id(self, target: TrackingTarget, trial_id: str) -> str | None:
        """The run of `trial_id`; None if it has none yet, or MLflow is unreachable (asked
        from Tune's loop, which must not wait: the run is then closed at the sweep's end)."""
        if not reachable(self.tracking_uri):
            return None
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
        waited = 0.0  # while MLflow answers: a trial's upload waits out an outage too
        while self.patience.call(f"the best checkpoint of run {run_id}",
                                 lambda: self.client.get_run(run_id).data.tags
                                 ).get(TAG_BEST_EPOCH) != str(epoch):
            if waited > timeout_s:
                raise TimeoutError(
                    f"run {run_id} has no checkpoint of its best epoch {epoch} after "
                    f"{timeout_s:.0f} s: the trial's process ended before it could upload it"
                )
            time.sleep(0.2)
            waited += 0.2

    def open_trial_runs(self, target: TrackingTarget) -> dict[str, str]:
        """Trial id -> run id of every child run still RUNNING (once the ends sent so far
        have arrived)."""
        self.drain()
        runs = self.patience.call("the runs still open", lambda: self.client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
            f"and tags.`{TAG_KIND}` = 'trial' and attributes.status = 'RUNNING'",
        ))
        return {run.data.tags.get(TAG_TRIAL, run.info.run_id): run.info.run_id for run in runs}

    def trial_run_ids(self, target: TrackingTarget) -> dict[str, str]:
        """Trial id -> run id of every trial run of the sweep."""
        return {run.data.tags.get(TAG_TRIAL, run.info.run_id): run.info.run_id
                for run in self._trial_runs(target)}

    def runs_without_best_checkpoint(self, target: TrackingTarget) -> dict[str, str]:
        """Trial id -> run id of every trial run with no best checkpoint uploaded."""
        return {run.data.tags.get(TAG_TRIAL, run.info.run_id): run.info.run_id
                for run in self._trial_runs(target) if TAG_BEST_EPOCH not in run.data.tags}

    def _trial_runs(self, target: TrackingTarget) -> list[Run]:
        found: list[Run] = []
        token = None
        while True:
            page = self.patience.call("the trial runs", partial(
                self.client.search_runs,
                [target.experiment_id],
                filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
                f"and tags.`{TAG_KIND}` = 'trial'",
                max_results=1000, page_token=token,
            ))
            found.extend(page)
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
        multi-objective sweep's Pareto front (`pareto_front.json`). The trials' ends go
        first; every write waits out an outage."""
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

        self.drain()
        self.patience.call(f"the outcome of sweep {target.sweep_id}", write)


def _send_call(entry: Entry) -> None:
    if isinstance(entry, Call):
        entry.send()


def end_run(
    client: MlflowClient, run_id: str, state: str, reason: str | None = None,
    failure: str | None = None,
) -> None:
    """Tag a trial's run with its state (and why, and its kind of failure) and set its
    terminal status."""
    tags = [RunTag(TAG_STATE, state)]
    if reason:
        tags.append(RunTag(TAG_REASON, reason[:5000]))
    failure = failure or ("diverged" if state == "diverged" else None)
    if failure:
        tags.append(RunTag(TAG_FAILURE, failure))
    client.log_batch(run_id, tags=tags)
    client.set_terminated(run_id, _RUN_STATUS[state])


def param_value(value: Any) -> str:
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
