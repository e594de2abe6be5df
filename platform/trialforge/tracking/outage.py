"""MLflow outages: is the server there, which failures are its absence, and how long to wait.

MLflow's HTTP client retries a failing request for about four minutes, blocking its caller,
so writes first ask the server's `/health` (one short request) and wait while it is silent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2 as codes

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
_TRANSIENT_CODES = {codes.ErrorCode.Name(code) for code in (
    codes.INTERNAL_ERROR, codes.TEMPORARILY_UNAVAILABLE, codes.REQUEST_LIMIT_EXCEEDED)}


class TrackingUnavailableError(TrialforgeError):
    """MLflow stayed unreachable for longer than the driver waits for it."""

    exit_code = 1

    @classmethod
    def after(cls, tracking_uri: str, down_s: float, consequence: str) -> TrackingUnavailableError:
        """The error for an outage of `down_s` seconds that cost `consequence`."""
        return cls(
            f"MLflow at {tracking_uri} has been unreachable for {down_s:.0f} s: {consequence}; "
            f"start the tracking server again, or wait longer with {PATIENCE_VARIABLE}")


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


def wait_out(
    tracking_uri: str, what: str, send: Callable[[], T], *, limit_s: float | None = None,
    retry_s: float = RETRY_S, probe: Callable[[str], bool] = reachable,
) -> T:
    """`send()` once MLflow answers, sent again after an outage (it must be safe to repeat),
    for as long as an outage may last (`patience_s`); then `TrackingUnavailableError`."""
    limit = patience_s() if limit_s is None else limit_s
    down_since: float | None = None
    while True:
        why: BaseException | None = None
        if probe(tracking_uri):
            try:
                return send()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                why = exc
        if down_since is None:
            down_since = time.monotonic()
            logger.warning("MLflow at %s is unreachable%s: %s waits up to %.0f s for it (%s)",
                           tracking_uri, first_line(why), what, limit, PATIENCE_VARIABLE)
        elif time.monotonic() - down_since >= limit:
            raise TrackingUnavailableError.after(tracking_uri, time.monotonic() - down_since,
                                                 f"{what} could not be written{first_line(why)}")
        time.sleep(retry_s)


def first_line(exc: BaseException | None) -> str:
    """`exc`'s first line, to quote in a message (" (...)"), or nothing."""
    text = str(exc).strip().splitlines() if exc is not None else []
    return f" ({text[0][:300]})" if text else ""
