"""The courier: writes wait while MLflow is away and arrive in order, once, when it is back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.tracking import MlflowClient

from trialforge.tracking import SweepTracker, TrialRun
from trialforge.tracking import courier as courier_module
from trialforge.tracking.courier import Courier
from trialforge.tracking.outbox import End, Entry, Epochs


def epochs(*numbers: int) -> Epochs:
    return Epochs(tuple((n, {"epoch_seconds": 0.1 * n}, 1000 * n) for n in numbers))


class FlakyRun:
    """A run that MLflow reaches only while `up`; it keeps the epochs it was sent."""

    def __init__(self) -> None:
        self.up = True
        self.rows: list[int] = []
        self.sends = 0
        self.ends: list[str] = []

    def send(self, entry: Entry) -> None:
        if not self.up:
            raise requests.ConnectionError("Connection refused")
        self.sends += 1
        if isinstance(entry, Epochs):
            self.rows += [e for e, _, _ in entry.items]
        elif isinstance(entry, End):
            self.ends.append(entry.state)


def flaky_courier(run: FlakyRun) -> Courier:
    return Courier("fake:", run.send, "trial_x", retry_s=0.05, probe=lambda _: run.up)


def test_writers_never_wait_while_mlflow_is_away_and_the_backlog_arrives_in_order() -> None:
    run = FlakyRun()
    courier = flaky_courier(run)
    courier.put(epochs(1, 2))
    assert courier.wait(5)
    run.up = False
    started = time.monotonic()
    for n in range(3, 9):  # training goes on: each flush returns at once
        courier.put(epochs(n))
        assert not courier.wait(5)
    courier.put(End("completed"))
    assert time.monotonic() - started < 1.0
    assert [e for e, _, _ in courier.backlog()] == [3, 4, 5, 6, 7, 8]
    run.up = True
    assert courier.wait(5, while_away=True)
    assert run.rows == list(range(1, 9)) and run.ends == ["completed"]
    assert run.sends <= 4, "what waited went out in a few batches, not one per epoch"
    assert courier.backlog() == [] and courier.offline_since is None


def test_an_error_that_is_not_an_outage_drops_its_entry_and_is_raised_once() -> None:
    sent: list[Entry] = []

    def send(entry: Entry) -> None:
        if isinstance(entry, End):
            raise MlflowException("bad state", error_code=INVALID_PARAMETER_VALUE)
        sent.append(entry)

    courier = Courier("fake:", send, "trial_x", retry_s=0.05, probe=lambda _: True)
    courier.put(End("nonsense"))
    courier.put(epochs(1))
    assert courier.wait(5)
    with pytest.raises(MlflowException, match="bad state"):
        courier.check()
    courier.check()  # once
    assert len(sent) == 1


def test_a_batch_whose_answer_was_lost_is_not_sent_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    target = SweepTracker(uri).start("exp", "sweep1", "name: exp\n", artifact_root=tmp_path)
    run = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1})
    real = run.client.log_batch
    sent: list[list[int]] = []

    def lossy(run_id: str, metrics: Any = (), **kwargs: Any) -> None:
        real(run_id, metrics=metrics, **kwargs)
        sent.append(sorted({m.step for m in metrics}))
        if len(sent) == 1:  # applied by the server, but the answer never came back
            raise requests.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(run.client, "log_batch", lossy)
    courier = Courier(uri, run.send, run.label, resync=run.forget_logged, retry_s=0.01)
    courier.put(epochs(1, 2))
    assert not courier.wait(10), "the answer was lost: the courier waits to try again"
    courier.put(epochs(3))
    assert courier.wait(10, while_away=True)
    history = MlflowClient(uri).get_metric_history(run.run_id or "", "epoch_seconds")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert sent == [[1, 2], [3]], "epochs 1-2 were read back from the run, not resent"


def test_the_driver_ends_a_trial_at_once_while_mlflow_is_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = True
    monkeypatch.setattr(courier_module, "reachable", lambda _: up)
    monkeypatch.setattr(courier_module, "RETRY_S", 0.05)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(uri)
    target = tracker.start("exp", "sweep1", "name: exp\n", artifact_root=tmp_path)
    run_id = TrialRun.open(target, "trial_a", "trial_a", {}).run_id or ""
    up = False
    started = time.monotonic()
    tracker.end_trial(run_id, "stopped_early")  # from Tune's loop: must not wait
    assert time.monotonic() - started < 0.5
    time.sleep(0.2)
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    up = True
    tracker.drain()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["trialforge.state"] == "stopped_early"
