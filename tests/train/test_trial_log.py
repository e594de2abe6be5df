"""TrialLog's batching, crash bookkeeping and MLflow outages, against a stand-in for the run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from trialforge.tracking import courier as courier_module
from trialforge.tracking.outbox import Best, End, Entry, Epochs
from trialforge.train import trial_log
from trialforge.train.trial_log import BEST_KEY, PENDING_KEY, TrialLog


class RecordingRun:
    """Keeps what would be written to MLflow, skipping epochs already written as TrialRun does."""

    tracking_uri = "recording:"  # not a server: always reachable
    label = "trial_test"
    run_id: str | None = "run1"

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.calls = 0
        self.best: list[tuple[bytes, int]] = []
        self.images: list[dict[str, np.ndarray]] = []
        self.ends: list[tuple[str, str | None]] = []

    def send(self, entry: Entry) -> None:
        if isinstance(entry, Epochs):
            self.calls += 1
            self.epochs += [e for e, _, _ in entry.items if not self.epochs or e > self.epochs[-1]]
        elif isinstance(entry, Best):
            self.best.append((entry.path.read_bytes(), entry.epoch))
            self.images.append(dict(entry.images))
        elif isinstance(entry, End):
            self.ends.append((entry.state, entry.reason))

    def forget_logged(self) -> None:
        pass

    def pending_recipe(self) -> dict[str, Any] | None:
        return None if self.run_id else {"trial_id": "t1"}


def _log(run: RecordingRun, interval: float = 1.0, at_end: bool = True) -> TrialLog:
    return TrialLog(run, "val_accuracy", "max", interval, at_end)  # type: ignore[arg-type]


def test_epochs_are_written_in_batches_and_all_at_close() -> None:
    run = RecordingRun()
    log = _log(run, interval=3600)
    for epoch in range(1, 6):
        log.record(epoch, {"epoch": epoch, "val_accuracy": 0.1 * epoch})
        assert not log.due()
    assert run.calls == 0
    assert [e for e, _, _ in log.checkpoint_extras()[PENDING_KEY]] == [1, 2, 3, 4, 5]
    log.close()
    assert (run.calls, run.epochs) == (1, [1, 2, 3, 4, 5])


def test_an_interval_of_zero_writes_every_epoch() -> None:
    run = RecordingRun()
    log = _log(run, interval=0.0)
    log.record(1, {"epoch": 1, "val_accuracy": 0.5})
    assert log.due()
    log.flush()
    assert run.epochs == [1] and log.checkpoint_extras()[PENDING_KEY] == []


def test_a_restored_trial_writes_what_its_checkpoint_carried_once() -> None:
    before_crash = RecordingRun()
    log = _log(before_crash, interval=3600)
    for epoch in (1, 2, 3):
        log.record(epoch, {"epoch": epoch, "val_accuracy": 0.9 - 0.1 * epoch})
    state = log.checkpoint_extras()  # what checkpoint 3 holds; the process then dies
    after = RecordingRun()
    after.epochs = [1]  # epoch 1 had reached MLflow
    restored = _log(after)
    restored.restore(state)
    assert after.epochs == [1, 2, 3]
    assert restored.best == state[BEST_KEY] == pytest.approx(0.8)
    assert not restored.record(4, {"epoch": 4, "val_accuracy": 0.5}), "0.5 is not a new best"


def test_the_best_checkpoint_is_uploaded_at_the_end_or_at_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(b"epoch 1")
    second.write_bytes(b"epoch 2")
    later, now = RecordingRun(), RecordingRun()
    for run, at_end in ((later, True), (now, False)):
        log = _log(run, at_end=at_end)
        for epoch, path in ((1, first), (2, second)):
            assert log.record(epoch, {"epoch": epoch, "val_accuracy": epoch / 10})
            drawn = np.full((2, 2), epoch, dtype=np.uint8)
            log.keep_best(path, epoch, {"plot": lambda drawn=drawn: drawn})
            log.flush()  # waits for what is queued: an upload "at once" has arrived
        log.close()
    assert later.best == [(b"epoch 2", 2)]
    assert now.best == [(b"epoch 1", 1), (b"epoch 2", 2)]
    # Images are drawn for a best epoch and go with its checkpoint.
    assert [int(images["plot"][0, 0]) for images in later.images] == [2]
    assert [int(images["plot"][0, 0]) for images in now.images] == [1, 2]


def test_non_finite_values_are_never_best() -> None:
    log = _log(RecordingRun())
    assert not log.record(1, {"epoch": 1, "val_accuracy": float("nan")})
    assert log.best is None
    assert log.record(2, {"epoch": 2, "val_accuracy": 0.2})


def test_due_follows_the_clock() -> None:
    log = _log(RecordingRun(), interval=0.05)
    assert not log.due()
    time.sleep(0.06)
    assert log.due()


class AwayRun(RecordingRun):
    """A run MLflow reaches only while `up`."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True

    def send(self, entry: Entry) -> None:
        if not self.up:
            raise requests.ConnectionError("Connection refused")
        self.run_id = "run1"  # created by the first write that reaches MLflow
        super().send(entry)


def test_training_goes_on_while_mlflow_is_away_and_checkpoints_carry_what_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(courier_module, "RETRY_S", 0.05)
    run = AwayRun()
    log = _log(run, interval=0.0)
    log.record(1, {"epoch": 1, "val_accuracy": 0.5})
    log.flush()
    run.up = False
    started = time.monotonic()
    for epoch in range(2, 6):
        log.record(epoch, {"epoch": epoch, "val_accuracy": 0.5})
        log.flush()  # returns at once: nothing waits on MLflow
    assert time.monotonic() - started < 1.0
    assert [e for e, _, _ in log.checkpoint_extras()[PENDING_KEY]] == [2, 3, 4, 5]
    run.up = True
    log.finish("completed", None)
    assert run.epochs == [1, 2, 3, 4, 5] and run.ends == [("completed", None)]
    assert log.checkpoint_extras()[PENDING_KEY] == []


def test_a_trial_that_ends_while_mlflow_is_away_waits_a_little_then_leaves_it_to_the_courier(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(courier_module, "RETRY_S", 0.05)
    monkeypatch.setattr(trial_log, "END_WAIT_S", 0.3)
    run = AwayRun()
    run.up = False
    log = _log(run, interval=3600)
    log.record(1, {"epoch": 1, "val_accuracy": 0.5})
    started = time.monotonic()
    log.finish("completed", None)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert "not yet in MLflow" in caplog.text and "last checkpoint" in caplog.text
    run.up = True  # still delivered while the process lives
    assert log.courier is not None and log.courier.wait(5, while_away=True)
    assert run.epochs == [1] and run.ends == [("completed", None)]


def test_a_trial_mlflow_never_saw_waits_for_it_to_come_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(courier_module, "RETRY_S", 0.05)
    monkeypatch.setattr(trial_log, "END_WAIT_S", 0.1)
    run = AwayRun()
    run.up, run.run_id = False, None  # MLflow was away when the trial started
    log = _log(run, interval=3600)
    log.record(1, {"epoch": 1, "val_accuracy": 0.5})
    assert log.checkpoint_extras()[trial_log.RUN_KEY] == {"trial_id": "t1"}
    threading.Timer(0.5, lambda: setattr(run, "up", True)).start()
    log.finish("completed", None)  # only this process can create the run: it waits
    assert "has never seen it" in caplog.text
    assert run.epochs == [1] and run.ends == [("completed", None)]
    assert trial_log.RUN_KEY not in log.checkpoint_extras()
