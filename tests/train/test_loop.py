"""The epoch loop against a recording session (the interface, not Ray: pure logic)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch import nn

from trialforge import parse_spec
from trialforge.spec import SweepSpec
from trialforge.train.loop import train_loop

METRIC_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "epoch_seconds"}


class RecordingSession:
    """One CPU worker that keeps what the loop reports."""

    rank = 0
    world_size = 1
    device = torch.device("cpu")

    def __init__(self, restore: dict[str, Any] | None = None) -> None:
        self.restore = restore
        self.reports: list[tuple[dict[str, float], dict[str, Any] | None, str]] = []

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        pass

    def check_stopped(self) -> None:
        pass

    def restored_checkpoint(self) -> dict[str, Any] | None:
        return self.restore

    def report(self, metrics: dict[str, float], checkpoint: dict[str, Any] | None = None,
               state: str = "running") -> None:
        self.reports.append((dict(metrics), copy.deepcopy(checkpoint), state))


def _spec(*overrides: str) -> SweepSpec:
    return parse_spec({"model": {"family": "cnn", "channels": 8}}, ["train.epochs=3", *overrides])


def test_every_epoch_reports_metrics_and_a_checkpoint() -> None:
    session = RecordingSession()
    train_loop(_spec("train.lr=0.01"), session)
    assert [m["epoch"] for m, _, _ in session.reports] == [1, 2, 3]
    states = [state for _, _, state in session.reports]
    assert states == ["running", "running", "completed"], "the last epoch ends the trial"
    for metrics, checkpoint, _ in session.reports:
        assert set(metrics) == METRIC_KEYS
        assert checkpoint is not None
        assert checkpoint["epoch"] == metrics["epoch"]
        assert set(checkpoint) == {"model", "optimizer", "epoch", "input_shape", "num_classes"}
    last = session.reports[-1][0]
    assert last["val_accuracy"] > 0.8, "a CNN learns digits in 3 epochs"
    assert last["train_loss"] < session.reports[0][0]["train_loss"]


def test_a_restored_trial_continues_exactly_where_it_stopped() -> None:
    whole = RecordingSession()
    train_loop(_spec("model.dropout=0.3"), whole)
    first_epoch_checkpoint = whole.reports[0][1]
    resumed = RecordingSession(restore=first_epoch_checkpoint)
    train_loop(_spec("model.dropout=0.3"), resumed)
    assert [m["epoch"] for m, _, _ in resumed.reports] == [2, 3]
    for (expected, _, _), (got, _, _) in zip(whole.reports[1:], resumed.reports, strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert got[key] == pytest.approx(expected[key], rel=1e-6), key


def test_a_loss_that_explodes_ends_the_trial_as_diverged() -> None:
    session = RecordingSession()
    train_loop(_spec("train.optimizer=sgd", "train.lr=1.0e8", "train.epochs=5"), session)
    assert len(session.reports) == 1
    metrics, checkpoint, state = session.reports[0]
    assert state == "diverged"
    assert checkpoint is None
    assert not math.isfinite(metrics["train_loss"])
    assert math.isnan(metrics["val_accuracy"])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_each_optimizer_trains_the_mlp(optimizer: str) -> None:
    session = RecordingSession()
    spec = parse_spec({"model": {"family": "mlp"}},
                      ["train.epochs=2", f"train.optimizer={optimizer}", "train.lr=0.01",
                       "train.weight_decay=0.0001"])
    train_loop(spec, session)
    assert session.reports[-1][0]["val_accuracy"] > 0.5
