"""MLflow outages: is the server there, which failures are its absence, and how long to wait.

MLflow's HTTP client retries a failing request itself for about four minutes (backoff up to
120 s between tries), blocking its caller. So every write first asks the server's `/health`
(one short request, no retries): while it does not answer, nothing is sent and the caller
decides whether to wait (`Patience`, for the parent run) or to queue and go on (the trials'
runs, `recorder.TrialRecorder`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    REQUEST_LIMIT_EXCEEDED,
    TEMPORARILY_UNAVAILABLE,
    ErrorCode,
)

from trialforge.errors import TrialforgeError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two looks at a server that did not answer.
RETRY_S = 2.0
#: Seconds the `/health` request may take.
PROBE_TIMEOUT_S = 2.0
#: How long the driver waits for MLflow to come back before the sweep gives up.
PATIENCE_VARIABLE = "TRIALFORGE_TRACKING_PATIENCE_S"
DEFAULT_PATIENCE_S = 600.0

# What MLflow's REST client reports for a server that is away or overwhelmed (a refused
# connection ends as INTERNAL_ERROR once its own retries are spent), not for a bad request.
_TRANSIENT_CODES = {
    ErrorCode.Name(code)
    for code in (INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE, REQUEST_LIMIT_EXCEEDED)
}


class TrackingUnavailableError(TrialforgeError):
    """MLflow stayed unreachable for longer than the driver waits for it."""

    exit_code = 1


def reachable(tracking_uri: str) -> bool:
    """Whether the tracking server answers now; stores that are not a server always do."""
    if not tracking_uri.startswith(("http://", "https://")):
        return True
    try:
        # Any answer will do (even 401 or 404): the server is there to take requests.
        requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S)
    except requests.RequestException:
        return False
    return True


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says MLflow is away (worth retrying later), not that a request is wrong."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError,
                        TimeoutError)):
        return True
    if isinstance(exc, requests.HTTPError):  # artifact uploads raise these
        status = exc.response.status_code if exc.response is not None else 500
        return status >= 500 or status == 429
    return isinstance(exc, MlflowException) and exc.error_code in _TRANSIENT_CODES


def patience_s() -> float:
    """How long the driver waits on an outage (`TRIALFORGE_TRACKING_PATIENCE_S`, seconds)."""
    value = os.environ.get(PATIENCE_VARIABLE)
    return float(value) if value else DEFAULT_PATIENCE_S


class Patience:
    """Synchronous MLflow calls that wait out an outage, for the sweep's driver.

    The clock starts when MLflow stops answering and resets when a call succeeds again:
    once an outage has lasted `limit_s`, every call fails at once with one clear error, so a
    sweep closing its records does not wait `limit_s` again for each of them.
    """

    def __init__(
        self,
        tracking_uri: str,
        limit_s: float | None = None,
        retry_s: float | None = None,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.limit_s = patience_s() if limit_s is None else limit_s
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.probe = probe
        self.down_since: float | None = None
        self._why = ""
        self._lock = threading.Lock()

    def call(self, what: str, send: Callable[[], T]) -> T:
        """`send()`, retried until MLflow answers (each write is safe to repeat)."""
        while True:
            self._await_server(what)
            try:
                result = send()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._note_down(what, exc)
                time.sleep(self.retry_s)
                continue
            self._note_up()
            return result

    def _await_server(self, what: str) -> None:
        while not (self.probe or reachable)(self.tracking_uri):
            self._note_down(what, None)
            time.sleep(self.retry_s)

    def _note_down(self, what: str, exc: BaseException | None) -> None:
        with self._lock:
            now = time.monotonic()
            if exc is not None:
                self._why = _first_line(exc)
            if self.down_since is None:
                self.down_since = now
                logger.warning(
                    "MLflow at %s is unreachable%s: writing %s waits up to %.0f s for it to "
                    "come back (%s)", self.tracking_uri, f" ({self._why})" if self._why else "",
                    what, self.limit_s, PATIENCE_VARIABLE)
            if now - self.down_since >= self.limit_s:
                raise TrackingUnavailableError(
                    f"MLflow at {self.tracking_uri} has been unreachable for "
                    f"{now - self.down_since:.0f} s, so {what} could not be written"
                    f"{f' (last error: {self._why})' if self._why else ''}: start the tracking "
                    f"server again, or wait longer with {PATIENCE_VARIABLE}")

    def _note_up(self) -> None:
        with self._lock:
            if self.down_since is not None:
                logger.warning("MLflow at %s is back after %.0f s", self.tracking_uri,
                               time.monotonic() - self.down_since)
            self.down_since = None
            self._why = ""


_shared: dict[str, Patience] = {}
_shared_lock = threading.Lock()


def patience(tracking_uri: str) -> Patience:
    """The process's `Patience` for `tracking_uri`: an outage is the server's, so every
    record the driver writes to it shares one clock."""
    with _shared_lock:
        return _shared.setdefault(tracking_uri, Patience(tracking_uri))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
