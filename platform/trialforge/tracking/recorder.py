"""The one writer of a sweep's MLflow runs once its parent run is open: the driver.

Each trial's start, epochs and end, and the sweep's end, become writes that return at once
(Tune's loop never waits on MLflow), journaled on local disk and sent in order, batched, by
a thread of their own. While MLflow is away they wait; a driver killed meanwhile leaves them
to `sweep resume`. A write sent twice is recorded once: a run is found by its trial's tag,
epochs up to a run's last logged one are skipped, and a metric resent keeps its timestamp.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import MlflowClient
from mlflow.utils import get_results_from_paginated_fn
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from trialforge.tracking import outage
from trialforge.tracking.artifacts import upload_best_checkpoint
from trialforge.tracking.journal import Entry, Journal
from trialforge.tracking.sweep_runs import RUN_STATUS, TrackingTarget
from trialforge.tracking.tags import (
    EPOCH_MARKER,
    PARETO_FRONT_FILE,
    TAG_BEST_EPOCH,
    TAG_FAILURE,
    TAG_KIND,
    TAG_REASON,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
)

logger = logging.getLogger(__name__)

BATCH = 500  # journal entries sent per pass of the writer
# A pass gathers entries this long (unless a flush waits): fewer, larger requests, and less
# of the driver's GIL taken from Tune's loop.
LINGER_S = 1.0


@dataclass
class RunWrites:
    """What one pass of the writer logs to one run."""

    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)


class SweepRecorder:
    """Every write to one sweep's MLflow runs, by the driver alone (see the module's doc)."""

    def __init__(self, target: TrackingTarget, journal: Path, metric: str, *,
                 resumed: bool = False, retry_s: float = outage.RETRY_S) -> None:
        self.target = target
        self.metric = metric
        self.retry_s = retry_s
        self.client = MlflowClient(target.tracking_uri)
        # MLflow prints two lines per run it ends on a server, over the sweep's progress.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.journal = Journal(journal)
        self._queue: deque[tuple[int, Entry]] = deque(self.journal.pending())
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._runs: dict[str, str] = {}  # trial id -> run id
        self._artifact_uris: dict[str, str] = {}  # run id -> where its artifacts go
        self._logged: dict[str, int] = {}  # run id -> its last epoch logged (or gathered)
        self._writes: dict[str, RunWrites] = {}  # run id -> what this pass logs to it
        self.offline_since: float | None = None
        self._error: BaseException | None = None
        self._waiting = 0  # flushes waiting: the writer does not linger for them
        # A trial's run may exist unknown to this writer (an earlier driver's, or a lost
        # answer's): the sweep's runs are read first.
        self._unsure = resumed or bool(self._queue)
        if self._queue:
            logger.warning("sending %d writes an earlier driver of sweep %s left for MLflow",
                           len(self._queue), target.sweep_id)
            self._wake()
        if resumed:
            self._put({"op": "reopen"})

    # What the driver saw (Tune's event loop): each returns at once.

    def opened(self, trial_id: str, name: str, params: Mapping[str, Any],
               tags: Mapping[str, str]) -> None:
        """A trial started (or Ray restarted it): its run, with its knobs and tags."""
        self._put({"op": "open", "trial": trial_id, "name": name,
                   "params": {key: param_value(value) for key, value in params.items()},
                   "tags": dict(tags)})

    def epoch(self, trial_id: str, epoch: int, metrics: Mapping[str, float],
              tags: Mapping[str, str] | None = None) -> None:
        """One epoch's metrics, stamped now, and tags it changed (the node it ran on)."""
        self._put({"op": "epoch", "trial": trial_id, "epoch": epoch, "metrics": dict(metrics),
                   "tags": dict(tags or {}), "at": _now_ms()})

    def ended(self, trial_id: str, state: str, reason: str | None, failure: str | None,
              best_epoch: int, best_value: float | None, checkpoint: str | None,
              tags: Mapping[str, str] | None = None) -> None:
        """How a trial ended, its score (`best_value` at `best_epoch`) and the checkpoint
        of that epoch (a path or URI in Ray's storage, with its images beside it); `tags`
        judge it (its feasibility)."""
        self._put({"op": "end", "trial": trial_id, "state": state, "reason": reason,
                   "failure": failure, "best_epoch": best_epoch, "best_value": best_value,
                   "checkpoint": checkpoint, "at": _now_ms(), "tags": dict(tags or {})})

    def end_orphans(self, reason: str) -> None:
        """End as interrupted every trial run still RUNNING once the writes before it have
        arrived: those of trials a dead driver started after Tune last saved its state,
        which Tune never resumes."""
        self._put({"op": "orphans", "reason": reason})

    def finished(self, state: str, summary: Mapping[str, float], best_params: Mapping[str, Any],
                 reason: str | None = None, pareto_front: list[dict[str, Any]] | None = None,
                 ) -> None:
        """Close the parent run with how the sweep ended (and why, when it failed or stopped
        early): its summary metrics, best params (`best.KNOB`) and, for several objectives,
        its Pareto front (`pareto_front.json`)."""
        self._put({"op": "finish", "state": state, "reason": reason, "at": _now_ms(),
                   "metrics": {key: float(value) for key, value in summary.items()
                               if isinstance(value, (int, float)) and math.isfinite(value)},
                   "params": {f"best.{key}": param_value(value)
                              for key, value in best_params.items()},
                   "pareto_front": pareto_front})

    # The driver's waits, off Tune's loop.

    def flush(self, patience: float | None = None) -> None:
        """Wait until every write so far has arrived, through an outage of up to
        `outage.patience_s()` (then `TrackingUnavailableError`); raise the first refused."""
        limit = outage.patience_s() if patience is None else patience
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while self._queue:
                    away = self.offline_since
                    if away is not None and time.monotonic() - away >= limit:
                        raise outage.TrackingUnavailableError.after(
                            self.target.tracking_uri, time.monotonic() - away,
                            f"{len(self._queue)} writes of the sweep's runs wait in "
                            f"{self.journal.path} and are sent by `sweep resume`")
                    self._cond.wait(0.05)
            finally:
                self._waiting -= 1
            error, self._error = self._error, None
        if error is not None:
            raise error

    def run_ids(self) -> dict[str, str]:
        """Trial id -> run id of each trial run opened so far (or by an earlier driver)."""
        with self._cond:
            return dict(self._runs)

    def close(self) -> None:
        """Close the journal (removed when nothing is owed)."""
        self.journal.close()

    # The writer thread.

    def _put(self, entry: Entry) -> None:
        number = self.journal.append(entry)
        with self._cond:
            self._queue.append((number, entry))
        self._wake()

    def _wake(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="mlflow-writer")
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting > 0 or len(self._queue) >= BATCH,
                                    timeout=LINGER_S)
                if not self._queue:
                    self._thread = None
                    self._cond.notify_all()
                    return
                batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            if not outage.reachable(self.target.tracking_uri):
                self._away(None)
                continue
            away: BaseException | None = None
            try:
                self._send([entry for _, entry in batch])
            except Exception as exc:
                # Keep what MLflow takes, drop (and report) what it refuses.
                away = exc if outage.is_transient(exc) else self._send_each(batch)
            if away is not None:
                self._unsure = True  # an answer may be lost: read the runs again
                self._away(away)
                continue
            self.journal.ack([number for number, _ in batch])
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                if self.offline_since is not None:
                    logger.warning("MLflow at %s is back after %.0f s; sent what waited",
                                   self.target.tracking_uri, time.monotonic() - self.offline_since)
                    self.offline_since = None
                self._cond.notify_all()

    def _send_each(self, batch: list[tuple[int, Entry]]) -> BaseException | None:
        """Send entries one by one, dropping (and reporting) those MLflow refuses; return
        the outage that stops it, if one does."""
        for _, entry in batch:
            try:
                self._send([entry])
            except Exception as exc:
                if outage.is_transient(exc):
                    return exc
                logger.error("MLflow refused a write (%s) of sweep %s, dropped: %s",
                             entry["op"], self.target.sweep_id, exc)
                with self._cond:
                    self._error = self._error or exc
        return None

    def _away(self, exc: BaseException | None) -> None:
        with self._cond:
            if self.offline_since is None:
                self.offline_since = time.monotonic()
                logger.warning(
                    "MLflow at %s is unreachable%s: training goes on; %d writes of the sweep's "
                    "runs wait (journaled in %s) and are sent in order when it is back",
                    self.target.tracking_uri, outage.first_line(exc), len(self._queue),
                    self.journal.path)
            self._cond.notify_all()
        time.sleep(self.retry_s)

    def _send(self, entries: list[Entry]) -> None:
        """Send entries in order; what they log to one run goes out in as few requests as
        MLflow takes, when the run ends or the pass does."""
        self._writes.clear()
        try:
            for entry in entries:
                {"open": self._open, "epoch": self._epoch, "end": self._end,
                 "orphans": self._orphans, "finish": self._finish,
                 "reopen": self._reopen}[entry["op"]](entry)
            for run_id in list(self._writes):
                self._log(run_id)
        except BaseException:
            self._logged.clear()  # what was gathered may not have arrived: read the runs again
            raise

    def _open(self, entry: Entry) -> None:
        run_id = self._run_of(entry["trial"])
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")  # Ray restarted the trial
        else:
            target = self.target
            info = self.client.create_run(target.experiment_id, run_name=entry["name"], tags={
                MLFLOW_PARENT_RUN_ID: target.parent_run_id, TAG_SWEEP: target.sweep_id,
                TAG_TRIAL: entry["trial"], TAG_KIND: "trial", TAG_STATE: "running",
                **entry["tags"]}).info
            run_id, self._artifact_uris[run_id] = info.run_id, info.artifact_uri
            self._logged[run_id] = 0
        # Again on a found run: MLflow takes a param logged twice with the same value.
        self._writes_of(run_id).params += [Param(k, v) for k, v in entry["params"].items()]
        with self._cond:
            self._runs[entry["trial"]] = run_id

    def _epoch(self, entry: Entry) -> None:
        if (run_id := self._run_of(entry["trial"])) is None:
            return
        writes = self._writes_of(run_id)
        writes.tags += [RunTag(k, v) for k, v in entry.get("tags", {}).items()]
        if entry["epoch"] > self._last_logged(run_id):
            writes.metrics += [Metric(key, float(value), entry["at"], entry["epoch"])
                               for key, value in entry["metrics"].items()]
            self._logged[run_id] = entry["epoch"]

    def _end(self, entry: Entry) -> None:
        run_id = self._run_of(entry["trial"])
        if run_id is None:
            return
        if entry["checkpoint"]:  # to the run's artifacts, with no request to find where
            upload_best_checkpoint(get_artifact_repository(
                self._artifact_uris[run_id], self.target.tracking_uri), run_id, entry["checkpoint"])
        writes = self._writes_of(run_id)
        writes.tags += [RunTag(k, v) for k, v in entry.get("tags", {}).items()]
        if entry["failure"]:
            writes.tags.append(RunTag(TAG_FAILURE, entry["failure"]))
        if entry["best_value"] is not None and math.isfinite(entry["best_value"]):
            writes.metrics.append(Metric(f"best_{self.metric}", entry["best_value"],
                                         entry["at"], entry["best_epoch"]))
            writes.tags.append(RunTag(TAG_BEST_EPOCH, str(entry["best_epoch"])))
        self._close_run(run_id, entry["state"], entry["reason"])

    def _orphans(self, entry: Entry) -> None:
        for run_id in list(self._writes):  # the ends gathered so far arrive first
            self._log(run_id)
        for trial_id, status in self._read_runs().items():
            if status == "RUNNING":
                self._close_run(self._runs[trial_id], "interrupted", entry["reason"])

    def _reopen(self, entry: Entry) -> None:
        run_id = self.target.parent_run_id
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, TAG_STATE, "running")
        if TAG_REASON in self.client.get_run(run_id).data.tags:
            self.client.delete_tag(run_id, TAG_REASON)  # why it stopped before

    def _finish(self, entry: Entry) -> None:
        run_id = self.target.parent_run_id
        if entry["pareto_front"] is not None:
            self.client.log_dict(run_id, entry["pareto_front"], PARETO_FRONT_FILE)
        writes = self._writes_of(run_id)
        writes.metrics += [Metric(k, v, entry["at"], 0) for k, v in entry["metrics"].items()]
        writes.params += [Param(k, v) for k, v in entry["params"].items()]
        self._close_run(run_id, entry["state"], entry["reason"])

    def _close_run(self, run_id: str, state: str, reason: str | None) -> None:
        """Log what was gathered for a run with its state (and why); end it."""
        self._writes_of(run_id).tags += [RunTag(TAG_STATE, state), *(
            [RunTag(TAG_REASON, reason[:5000])] if reason else [])]
        self._log(run_id)
        self.client.set_terminated(run_id, RUN_STATUS.get(state, "FAILED"))

    def _writes_of(self, run_id: str) -> RunWrites:
        return self._writes.setdefault(run_id, RunWrites())

    def _log(self, run_id: str) -> None:
        """What was gathered for a run, in one call (MLflow's client splits it as needed)."""
        if (writes := self._writes.pop(run_id, None)) is not None:
            self.client.log_batch(run_id, metrics=writes.metrics, params=writes.params,
                                  tags=writes.tags)

    def _run_of(self, trial_id: str) -> str | None:
        if trial_id not in self._runs and self._unsure:
            self._read_runs()
        with self._cond:
            return self._runs.get(trial_id)

    def _read_runs(self) -> dict[str, str]:
        """Trial id -> status of the sweep's trial runs in MLflow (their ids learnt)."""
        def page(count: int, token: str | None) -> PagedList[Run]:
            return self.client.search_runs(
                [self.target.experiment_id], max_results=count, page_token=token,
                filter_string=f"tags.`{TAG_SWEEP}` = '{self.target.sweep_id}' "
                f"and tags.`{TAG_KIND}` = 'trial'")

        runs = get_results_from_paginated_fn(page, 1000)  # type: ignore[no-untyped-call]
        with self._cond:
            for run in runs:
                self._runs.setdefault(run.data.tags[TAG_TRIAL], run.info.run_id)
                self._artifact_uris[run.info.run_id] = run.info.artifact_uri
            self._unsure = False
        return {run.data.tags[TAG_TRIAL]: run.info.status for run in runs}

    def _last_logged(self, run_id: str) -> int:
        if run_id not in self._logged:
            history = self.client.get_metric_history(run_id, EPOCH_MARKER)
            self._logged[run_id] = max((m.step for m in history), default=0)
        return self._logged[run_id]


def param_value(value: Any) -> str:
    """A knob's value as an MLflow param (which holds at most 6,000 characters)."""
    return str(value)[:6000]


def _now_ms() -> int:
    return int(time.time() * 1000)
