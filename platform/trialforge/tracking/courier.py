"""Sends an `Outbox` to MLflow on a thread of its own, so no writer ever waits on MLflow.

While MLflow does not answer, entries wait and the thread looks again every `retry_s` (one
short `/health` request, see `outage`); once it answers, the backlog goes out in order.
A send that failed may still have been applied (its answer was lost): `resync` runs before
the next one (a trial's run reads which epochs it has), so nothing arrives twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from trialforge.tracking.outage import RETRY_S, is_transient, reachable
from trialforge.tracking.outbox import Entry, Epoch, Outbox

logger = logging.getLogger(__name__)

#: A send in flight for longer than this is stuck in MLflow's own retries: writers that
#: wait for the courier stop waiting.
STALL_S = 2.0


class Courier:
    """One writer's ordered deliveries to MLflow (a trial's run, or the driver's writes).

    `send(entry)` performs one entry; `done(entry)` runs once an entry is sent, replaced
    or dropped (to delete its files). An error that is not an outage (a bad request) drops
    its entry and is raised by the writer's next `check`.
    """

    def __init__(
        self,
        tracking_uri: str,
        send: Callable[[Entry], None],
        label: str,
        *,
        resync: Callable[[], None] | None = None,
        done: Callable[[Entry], None] | None = None,
        retry_s: float | None = None,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.label = label
        self._send = send
        self._resync = resync
        self._done = done
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self._probe = probe
        self._outbox = Outbox()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sending_since: float | None = None
        self._resync_due = False
        self.offline_since: float | None = None
        self._error: BaseException | None = None

    def put(self, entry: Entry) -> None:
        """Queue `entry` behind what is waiting; returns at once."""
        with self._cond:
            replaced = self._outbox.put(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"mlflow-courier-{self.label}")
                self._thread.start()
            self._cond.notify_all()
        for old in replaced:
            self._finish(old)

    def backlog(self) -> list[Epoch]:
        """The epochs MLflow has not acknowledged yet, in order."""
        with self._cond:
            return self._outbox.epochs()

    def pending(self) -> int:
        """How many entries are waiting (or in flight)."""
        with self._cond:
            return len(self._outbox)

    def wait(self, timeout_s: float, *, while_away: bool = False) -> bool:
        """Wait until everything queued has arrived (True), at most `timeout_s`. Unless
        `while_away`, stop at once when MLflow is unreachable or a send is stuck."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._outbox):
                now = time.monotonic()
                if now >= deadline:
                    return False
                if not while_away and (
                    self.offline_since is not None
                    or (self._sending_since is not None and now - self._sending_since > STALL_S)
                ):
                    return False
                self._cond.wait(min(deadline - now, 0.05))
            return True

    def check(self) -> None:
        """Raise the error that made the courier drop an entry, if any (once)."""
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                entry = self._outbox.head()
                if entry is None:
                    self._thread = None
                    self._cond.notify_all()
                    return
            if not (self._probe or reachable)(self.tracking_uri):
                self._away(None)
                continue
            with self._cond:
                self._sending_since = time.monotonic()
            try:
                if self._resync_due and self._resync is not None:
                    self._resync()
                self._resync_due = False
                self._send(entry)
            except Exception as exc:
                if is_transient(exc):
                    self._resync_due = True
                    self._away(exc)
                    continue
                logger.error("%s: MLflow refused a write, which is dropped: %s", self.label, exc)
                with self._cond:
                    self._error = self._error or exc
                    self._acknowledge()
                self._finish(entry)
                continue
            with self._cond:
                self._acknowledge()
                if self.offline_since is not None:
                    logger.warning("%s: MLflow at %s is back after %.0f s; sending what waited",
                                   self.label, self.tracking_uri,
                                   time.monotonic() - self.offline_since)
                    self.offline_since = None
            self._finish(entry)

    def _acknowledge(self) -> None:
        self._outbox.ack()
        self._sending_since = None
        self._cond.notify_all()

    def _away(self, exc: BaseException | None) -> None:
        """MLflow did not answer: keep the entry, look again in `retry_s`."""
        with self._cond:
            self._outbox.release()
            self._sending_since = None
            if self.offline_since is None:
                self.offline_since = time.monotonic()
                why = f" ({str(exc).strip().splitlines()[0][:300]})" if exc and str(exc) else ""
                logger.warning(
                    "%s: MLflow at %s is unreachable%s; training goes on, %d epochs (and %d "
                    "writes in all) wait and are sent in order when it is back (checking every "
                    "%.0f s)", self.label, self.tracking_uri, why, len(self._outbox.epochs()),
                    len(self._outbox), self.retry_s)
            self._cond.notify_all()
            # The full interval, whatever is queued meanwhile: one look every `retry_s`.
            until = time.monotonic() + self.retry_s
            while (left := until - time.monotonic()) > 0:
                self._cond.wait(left)

    def _finish(self, entry: Entry) -> None:
        if self._done is not None:
            self._done(entry)
