"""Telling an MLflow outage from a bad request, and waiting one out."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from trialforge.tracking.outage import (
    TrackingUnavailableError,
    is_transient,
    reachable,
    wait_out,
)


def test_outages_are_told_from_bad_requests() -> None:
    assert is_transient(requests.ConnectionError("refused"))
    assert is_transient(MlflowException("API request to http://x failed: Max retries exceeded"))
    assert not is_transient(MlflowException("no", error_code=INVALID_PARAMETER_VALUE))
    for status, transient in ((503, True), (429, True), (404, False)):
        response = requests.Response()
        response.status_code = status
        assert is_transient(requests.HTTPError(response=response)) is transient
    assert not is_transient(ValueError("a bug"))


def test_reachable_asks_a_server_and_trusts_other_stores() -> None:
    assert reachable("sqlite:///nowhere.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert not reachable(f"http://127.0.0.1:{closed}")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        assert reachable(f"http://127.0.0.1:{server.server_address[1]}"), "any answer will do"
    finally:
        server.server_close()


def test_a_write_waits_out_an_outage_and_is_sent_again() -> None:
    state = {"up": False, "calls": 0}

    def send() -> str:
        state["calls"] += 1
        if state["calls"] == 1:  # the server went away with this request
            raise MlflowException("API request failed with exception: Connection reset")
        return "done"

    threading.Timer(0.1, lambda: state.update(up=True)).start()
    assert wait_out("fake:", "x", send, limit_s=10, retry_s=0.01,
                    probe=lambda _: bool(state["up"])) == "done"
    assert state["calls"] == 2


def test_waiting_ends_with_one_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=r"http://mlflow:5000 has been unreach.*"
                       r"the run of sweep s1 could not be written.*TRIALFORGE_TRACKING_PATIENCE_S"):
        wait_out("http://mlflow:5000", "the run of sweep s1", lambda: None, limit_s=0.1,
                 retry_s=0.01, probe=lambda _: False)
    assert time.monotonic() - started < 5


def test_a_bad_request_is_not_retried() -> None:
    calls = []

    def send() -> None:
        calls.append(1)
        raise MlflowException("no such param", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException):
        wait_out("fake:", "x", send, limit_s=10, retry_s=0.01, probe=lambda _: True)
    assert len(calls) == 1
