"""TrialLog's batching and crash bookkeeping, against a recording stand-in for the run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trialforge.train.trial_log import BEST_KEY, PENDING_KEY, TrialLog


class RecordingRun:
    """Keeps what would be written to MLflow, skipping epochs already written as TrialRun does."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.calls = 0
        self.best: list[tuple[bytes, int]] = []
        self.images: list[dict[str, np.ndarray]] = []

    def log_epochs(self, epochs: list[tuple[int, dict[str, float], int]]) -> None:
        self.calls += 1
        self.epochs += [e for e, _, _ in epochs if not self.epochs or e > self.epochs[-1]]

    def log_best_checkpoint(self, path: Path, epoch: int, images: Any = None) -> None:
        self.best.append((path.read_bytes(), epoch))
        self.images.append(dict(images or {}))


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
