"""The one writer of every trial's MLflow run: the sweep's driver, from what Tune hands it.

Trials only train and report to Ray. The driver turns each trial's start, epochs and end
into writes (`opened`, `epoch`, `tag`, `ended`), which return at once: Tune's event loop,
which every trial waits on, never waits on MLflow. Each write is journaled on local disk
(`journal`) and sent, in order and batched, by a thread of its own. While MLflow is
unreachable the writes wait, and they go out when it is back; a driver killed meanwhile
leaves them in the journal for the next one (`sweep resume`).

Every write can be repeated without being recorded twice: a trial's run is found again by
its trial tag, epochs up to the run's last logged epoch are skipped (a resumed trial trains
some again), and a metric row sent twice with its timestamp is stored once by MLflow.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from trialforge.tracking.journal import Entry, Journal
from trialforge.tracking.outage import (
    PATIENCE_VARIABLE,
    RETRY_S,
    TrackingUnavailableError,
    is_transient,
    patience_s,
    reachable,
)
from trialforge.tracking.sweep_runs import TrackingTarget, end_run, param_value
from trialforge.tracking.tags import (
    BEST_CHECKPOINT_DIR,
    EPOCH_MARKER,
    TAG_BEST_EPOCH,
    TAG_KIND,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
)

logger = logging.getLogger(__name__)

METRICS_PER_CALL = 1000  # what MLflow's log_batch takes
PARAMS_PER_CALL = 100
BATCH = 500  # journal entries sent per pass of the writer
# How long the writer gathers entries before a pass (unless someone waits for them): fewer,
# larger requests, and less time holding the driver's GIL away from Tune's loop.
LINGER_S = 0.25


class TrialRecorder:
    """Every trial run of one sweep, written by the driver alone (see the module's doc)."""

    def __init__(self, target: TrackingTarget, journal: Path, metric: str, *,
                 resumed: bool = False, retry_s: float = RETRY_S) -> None:
        self.target = target
        self.metric = metric
        self.retry_s = retry_s
        self.client = MlflowClient(target.tracking_uri)
        self.journal = Journal(journal)
        self._queue: deque[tuple[int, Entry]] = deque(self.journal.pending())
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._runs: dict[str, str] = {}  # trial id -> run id
        self._logged: dict[str, int] = {}  # run id -> its last epoch logged
        self.offline_since: float | None = None
        self._error: BaseException | None = None
        self._waiting = 0  # flushes waiting: the writer does not linger for them
        # Whether a trial's run may exist without this writer knowing it (an earlier driver,
        # or a request whose answer was lost): then runs are looked up before one is made.
        self._unsure = resumed or bool(self._queue)
        if self._queue:
            logger.warning("sending %d writes an earlier driver of sweep %s left for MLflow",
                           len(self._queue), target.sweep_id)
            self._wake()

    # What the driver saw (Tune's event loop): each returns at once.

    def opened(self, trial_id: str, name: str, params: dict[str, Any],
               tags: dict[str, str]) -> None:
        """A trial started (or Ray restarted it): its run, with its knobs and tags."""
        self._put({"op": "open", "trial": trial_id, "name": name,
                   "params": {key: param_value(value) for key, value in params.items()},
                   "tags": dict(tags)})

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """One epoch's metrics, stamped now."""
        self._put({"op": "epoch", "trial": trial_id, "epoch": epoch,
                   "metrics": metrics, "at": int(time.time() * 1000)})

    def tag(self, trial_id: str, tags: dict[str, str]) -> None:
        self._put({"op": "tag", "trial": trial_id, "tags": dict(tags)})

    def ended(self, trial_id: str, state: str, reason: str | None, failure: str | None,
              best_epoch: int, best_value: float | None, checkpoint: str | None) -> None:
        """How a trial ended, its score (`best_value` at `best_epoch`) and the checkpoint
        of that epoch (a path or URI in Ray's storage, with its images beside it)."""
        self._put({"op": "end", "trial": trial_id, "state": state, "reason": reason,
                   "failure": failure, "best_epoch": best_epoch, "best_value": best_value,
                   "checkpoint": checkpoint})

    # The driver's waits, off Tune's loop.

    def flush(self, patience: float | None = None) -> None:
        """Wait until every write so far has arrived, for as long as an outage may last
        (`TRIALFORGE_TRACKING_PATIENCE_S`); then raise `TrackingUnavailableError`."""
        limit = patience_s() if patience is None else patience
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
        try:
            self._await_queue(limit)
        finally:
            with self._cond:
                self._waiting -= 1
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _await_queue(self, limit: float) -> None:
        with self._cond:
            while self._queue:
                away = self.offline_since
                if away is not None and time.monotonic() - away >= limit:
                    raise TrackingUnavailableError(
                        f"MLflow at {self.target.tracking_uri} has been unreachable for "
                        f"{time.monotonic() - away:.0f} s: {len(self._queue)} writes of the "
                        f"trials' runs wait in {self.journal.path} and are sent by `sweep "
                        f"resume`; start the tracking server again, or wait longer with "
                        f"{PATIENCE_VARIABLE}")
                self._cond.wait(0.05)

    def run_id(self, trial_id: str) -> str | None:
        """The run of `trial_id`, once its opening has arrived (see `flush`)."""
        with self._cond:
            return self._runs.get(trial_id)

    def run_ids(self) -> dict[str, str]:
        with self._cond:
            return dict(self._runs)

    def learn_runs(self, runs: dict[str, str]) -> None:
        """Trial id -> run id of runs an earlier driver of the sweep opened."""
        with self._cond:
            self._runs.update(runs)

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
                                                name="mlflow-trial-writer")
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
            if not reachable(self.target.tracking_uri):
                self._away(None)
                continue
            outage: BaseException | None = None
            try:
                self._send([entry for _, entry in batch])
            except Exception as exc:
                # Keep what MLflow takes, drop (and report) what it refuses.
                outage = exc if is_transient(exc) else self._send_each(batch)
            if outage is not None:
                self._logged.clear()  # an answer may be lost: read the runs again
                self._unsure = True
                self._away(outage)
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
        """Send entries one by one, dropping (and reporting) those MLflow refuses; the
        outage that stops it, if one does."""
        for _, entry in batch:
            try:
                self._send([entry])
            except Exception as exc:
                if is_transient(exc):
                    return exc
                logger.error("MLflow refused a write of trial %s's run, dropped: %s",
                             entry.get("trial"), exc)
                with self._cond:
                    self._error = self._error or exc
        return None

    def _away(self, exc: BaseException | None) -> None:
        with self._cond:
            if self.offline_since is None:
                self.offline_since = time.monotonic()
                why = f" ({str(exc).strip().splitlines()[0][:300]})" if exc and str(exc) else ""
                logger.warning(
                    "MLflow at %s is unreachable%s: training goes on; %d writes of the trials' "
                    "runs wait (journaled in %s) and are sent in order when it is back",
                    self.target.tracking_uri, why, len(self._queue), self.journal.path)
            self._cond.notify_all()
        time.sleep(self.retry_s)

    def _send(self, entries: list[Entry]) -> None:
        """Send entries in order; consecutive epochs go out in as few requests as they fit."""
        metrics: dict[str, list[Metric]] = {}
        for entry in entries:
            if entry["op"] == "epoch":
                run_id = self._run_of(entry["trial"])
                if run_id is not None and entry["epoch"] > self._last_logged(run_id):
                    metrics.setdefault(run_id, []).extend(
                        Metric(key, float(value), entry["at"], entry["epoch"])
                        for key, value in entry["metrics"].items())
                continue
            self._send_metrics(metrics)
            if entry["op"] == "open":
                self._open(entry)
            elif (run_id := self._run_of(entry["trial"])) is not None:
                if entry["op"] == "tag":
                    self.client.log_batch(run_id, tags=[RunTag(k, v)
                                                         for k, v in entry["tags"].items()])
                else:
                    self._end(run_id, entry)
        self._send_metrics(metrics)

    def _send_metrics(self, metrics: dict[str, list[Metric]]) -> None:
        for run_id, rows in metrics.items():
            for start in range(0, len(rows), METRICS_PER_CALL):
                self.client.log_batch(run_id, metrics=rows[start : start + METRICS_PER_CALL])
            self._logged[run_id] = max(row.step for row in rows)
        metrics.clear()

    def _open(self, entry: Entry) -> None:
        with self._cond:
            run_id = self._runs.get(entry["trial"])
        if run_id is None and self._unsure:
            run_id = self._find(entry["trial"])
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")  # Ray restarted the trial
        else:
            target = self.target
            run_id = self.client.create_run(target.experiment_id, run_name=entry["name"], tags={
                MLFLOW_PARENT_RUN_ID: target.parent_run_id, TAG_SWEEP: target.sweep_id,
                TAG_TRIAL: entry["trial"], TAG_KIND: "trial", TAG_STATE: "running",
                **entry["tags"]}).info.run_id
            self._logged[run_id] = 0
        # Again on a found run: MLflow takes a param logged twice with the same value.
        params = [Param(key, value) for key, value in entry["params"].items()]
        for start in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(run_id, params=params[start : start + PARAMS_PER_CALL])
        with self._cond:
            self._runs[entry["trial"]] = run_id

    def _end(self, run_id: str, entry: Entry) -> None:
        if entry["checkpoint"]:
            self._upload_best(run_id, entry["checkpoint"])
        score, tags = [], []
        if entry["best_value"] is not None and math.isfinite(entry["best_value"]):
            score = [Metric(f"best_{self.metric}", entry["best_value"], int(time.time() * 1000),
                            entry["best_epoch"])]
            tags = [RunTag(TAG_BEST_EPOCH, str(entry["best_epoch"]))]
        end_run(self.client, run_id, entry["state"], entry["reason"], entry["failure"],
                metrics=score, tags=tags)

    def _upload_best(self, run_id: str, checkpoint: str) -> None:
        """The checkpoint file under `best_checkpoint/`, its images at the run's root."""
        with tempfile.TemporaryDirectory(prefix="trialforge-best-") as tmp:
            folder = _local_folder(checkpoint, Path(tmp))
            if folder is None:
                logger.warning("run %s: its best checkpoint %s is gone from Ray's storage",
                               run_id, checkpoint)
                return
            for path in sorted(folder.iterdir()):
                if path.suffix == ".pt":
                    self.client.log_artifact(run_id, str(path), BEST_CHECKPOINT_DIR)
                elif path.suffix == ".png":
                    self.client.log_artifact(run_id, str(path))

    def _run_of(self, trial_id: str) -> str | None:
        with self._cond:
            known = self._runs.get(trial_id)
        if known is None and (known := self._find(trial_id)) is not None:
            with self._cond:
                self._runs[trial_id] = known
        return known

    def _find(self, trial_id: str) -> str | None:
        found = self.client.search_runs(
            [self.target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{self.target.sweep_id}' "
            f"and tags.`{TAG_TRIAL}` = '{trial_id}'", max_results=1)
        return str(found[0].info.run_id) if found else None

    def _last_logged(self, run_id: str) -> int:
        if run_id not in self._logged:
            history = self.client.get_metric_history(run_id, EPOCH_MARKER)
            self._logged[run_id] = max((m.step for m in history), default=0)
        return self._logged[run_id]


def _local_folder(checkpoint: str, scratch: Path) -> Path | None:
    """The checkpoint folder on this machine: itself, or a copy of remote storage's."""
    if "://" not in checkpoint:
        folder = Path(checkpoint)
        return folder if folder.is_dir() else None
    import pyarrow.fs

    try:
        pyarrow.fs.copy_files(checkpoint, str(scratch))
    except (OSError, FileNotFoundError):
        return None
    return scratch if any(scratch.iterdir()) else None
