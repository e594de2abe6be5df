"""The epoch loop against a recording session (the interface, not Ray: pure logic)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from support import REPO, RecordingSession
from trialforge import parse_spec
from trialforge.spec import SweepSpec
from trialforge.tasks import COST_METRICS, TASK_METRICS
from trialforge.train.loop import train_loop

METRIC_KEYS = {"epoch", "epoch_seconds", *TASK_METRICS["classification"], *COST_METRICS}
CHECKPOINT_KEYS = {"model", "optimizer", "hyperparameters", "lr_schedule", "early_stopping",
                   "epoch",
                   "input_shape", "num_classes", "input_dtype", "model_args", "final_metrics",
                   "preprocessing"}
CORPUS = REPO / "jobs" / "data" / "corpus"


def _spec(*overrides: str) -> SweepSpec:
    return parse_spec({"model": {"family": "cnn", "channels": 8}}, ["train.epochs=3", *overrides])


def _rnn_spec(*overrides: str) -> SweepSpec:
    return parse_spec({"model": {"family": "rnn"}}, ["train.epochs=3", *overrides])


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
        assert set(checkpoint) == CHECKPOINT_KEYS
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


def test_a_trial_restored_from_its_last_epoch_reports_its_end_again() -> None:
    # Its driver died before Tune recorded the end: nothing is trained again.
    whole = RecordingSession()
    train_loop(_spec(), whole)
    last_metrics, last_checkpoint, _ = whole.reports[-1]
    assert last_checkpoint is not None and last_checkpoint["final_metrics"] == last_metrics
    assert all(c is not None and c["final_metrics"] is None for _, c, _ in whole.reports[:-1])
    restored = RecordingSession(restore=last_checkpoint)
    train_loop(_spec(), restored)
    assert restored.reports == [(last_metrics, None, "completed")]


def test_a_loss_that_explodes_ends_the_trial_as_diverged() -> None:
    session = RecordingSession()
    train_loop(_spec("train.optimizer=sgd", "train.lr=1.0e8", "train.epochs=5"), session)
    assert len(session.reports) == 1
    metrics, checkpoint, state = session.reports[0]
    assert state == "diverged"
    assert checkpoint is None
    assert not math.isfinite(metrics["train_loss"])
    assert math.isnan(metrics["val_accuracy"]), "reported, not measured"


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_each_optimizer_trains_the_mlp(optimizer: str) -> None:
    session = RecordingSession()
    spec = parse_spec({"model": {"family": "mlp"}},
                      ["train.epochs=2", f"train.optimizer={optimizer}", "train.lr=0.01",
                       "train.weight_decay=0.0001"])
    train_loop(spec, session)
    assert session.reports[-1][0]["val_accuracy"] > 0.5


def test_classification_reports_macro_metrics_and_a_confusion_matrix() -> None:
    session = RecordingSession()
    train_loop(_spec("train.lr=0.01", "train.epochs=2"), session)
    metrics = session.reports[-1][0]
    for key in ("val_precision", "val_recall", "val_f1"):
        assert 0.5 < metrics[key] <= 1.0, key
    assert metrics["params"] == sum(p.numel() for p in _cnn_params(session))
    assert metrics["latency_us"] > 0
    confusion = np.asarray(session.figures[-1]["confusion_matrix"]["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() > 0, "counts of every class pair"


def _cnn_params(session: RecordingSession) -> list[torch.Tensor]:
    checkpoint = session.reports[-1][1]
    assert checkpoint is not None
    return [t for k, t in checkpoint["model"].items() if "running" not in k
            and "num_batches" not in k]


def test_patience_stops_a_trial_that_stopped_improving() -> None:
    session = RecordingSession()
    # A tiny learning rate barely moves: no improvement within 2 epochs after the first.
    train_loop(_spec("train.lr=1.0e-9", "train.epochs=10", "train.patience=2"), session)
    states = [state for _, _, state in session.reports]
    assert len(states) < 10 and states[-1] == "completed"


@pytest.mark.parametrize(("schedule", "expected"), [("cosine", 0.0), ("step", 0.01 * 0.1**1)])
def test_lr_schedules_decay_the_learning_rate(schedule: str, expected: float) -> None:
    session = RecordingSession()
    train_loop(_spec("train.lr=0.01", f"train.lr_schedule={schedule}", "train.step_size=2"),
               session)
    checkpoint = session.reports[-1][1]
    assert checkpoint is not None
    lr = checkpoint["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(expected, abs=1e-9)


def test_l1_penalty_shrinks_the_weights() -> None:
    plain, sparse = RecordingSession(), RecordingSession()
    train_loop(_spec("train.lr=0.01"), plain)
    train_loop(_spec("train.lr=0.01", "train.l1=0.001"), sparse)

    def weight_norm(session: RecordingSession) -> float:
        checkpoint = session.reports[-1][1]
        assert checkpoint is not None
        return sum(t.abs().sum().item() for k, t in checkpoint["model"].items()
                   if k.endswith("weight"))

    assert weight_norm(sparse) < 0.8 * weight_norm(plain)


def test_gradient_clipping_tames_an_exploding_learning_rate() -> None:
    wild = ("model.cell=rnn", "train.optimizer=sgd", "train.lr=50", "train.epochs=2",
            "train.batch_size=32")
    exploding, clipped = RecordingSession(), RecordingSession()
    train_loop(_rnn_spec(*wild), exploding)
    train_loop(_rnn_spec(*wild, "train.grad_clip=0.01"), clipped)
    # Unclipped, steps of lr x gradient throw the weights far off: the loss is in the
    # hundreds; clipped, each step is at most lr x 0.01 long and the RNN still learns.
    assert exploding.reports[-1][0]["train_loss"] > 100
    assert clipped.reports[-1][0]["train_loss"] < 2.0


def test_an_lstm_reads_digits_row_by_row() -> None:
    session = RecordingSession()
    train_loop(_rnn_spec("model.hidden_size=32", "train.lr=0.01"), session)
    checkpoint = session.reports[-1][1]
    assert checkpoint is not None and checkpoint["input_shape"] == [8, 8]
    assert session.reports[-1][0]["val_accuracy"] > 0.6


def test_a_gru_forecasts_the_series() -> None:
    session = RecordingSession()
    spec = parse_spec({"model": {"family": "rnn", "cell": "gru", "hidden_size": 16},
                       "data": {"dataset": "series", "window": 24}},
                      ["train.epochs=3", "train.lr=0.01"])
    train_loop(spec, session)
    metrics = session.reports[-1][0]
    assert set(metrics) >= {"val_rmse", "val_mae", "val_loss"}
    assert metrics["val_rmse"] == pytest.approx(math.sqrt(metrics["val_loss"]))
    # Standardised values: predicting the mean scores an RMSE near 1; the seasons are learnt.
    assert metrics["val_rmse"] < 0.6
    assert session.figures[-1] == {}, "no confusion matrix for a regression"


def test_a_char_lstm_models_text(tmp_path: Path) -> None:
    session = RecordingSession()
    spec = parse_spec({"model": {"family": "rnn", "hidden_size": 32},
                       "data": {"dataset": "text", "path": str(CORPUS), "window": 32}},
                      ["train.epochs=2", "train.lr=0.01"])
    train_loop(spec, session)
    first, last = session.reports[0][0], session.reports[-1][0]
    assert last["val_perplexity"] == pytest.approx(math.exp(last["val_loss"]))
    assert last["val_perplexity"] < first["val_perplexity"]
    checkpoint = session.reports[-1][1]
    assert checkpoint is not None and checkpoint["input_dtype"] == "int64"
    assert checkpoint["model_args"]["vocab_size"] == checkpoint["num_classes"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_a_cpu_too(precision: str, monkeypatch: pytest.MonkeyPatch,
                                             ) -> None:
    """Autocast runs the forward pass in bf16 / fp16 (fp16's gradients through a scaler);
    the weights stay fp32."""
    from trialforge.train import precision as amp

    seen: list[torch.dtype] = []
    autocast = amp.Precision.autocast

    def watched(self: amp.Precision):  # type: ignore[no-untyped-def]
        with autocast(self):
            seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                        else torch.float32)
            yield

    monkeypatch.setattr(amp.Precision, "autocast", contextlib.contextmanager(watched))
    session = RecordingSession()
    spec = parse_spec({"model": {"family": "mlp"}},
                      ["train.epochs=2", "train.lr=0.01", f"train.precision={precision}"])
    train_loop(spec, session)
    assert set(seen) == {amp.PRECISIONS[precision]}
    assert session.reports[-1][0]["val_accuracy"] > 0.5
    assert all(t.dtype == torch.float32 for t in session.reports[-1][1]["model"].values()
               if t.is_floating_point())


def test_train_compile_trains_a_compiled_model_with_its_plain_state_dict() -> None:
    from torch._dynamo.utils import counters

    from trialforge.train.compilation import reset_compiled

    reset_compiled()
    counters.clear()
    compiled, plain = RecordingSession(), RecordingSession()
    overrides = ["train.epochs=1", "train.lr=0.01"]
    try:
        train_loop(parse_spec({"model": {"family": "mlp"}}, [*overrides, "train.compile=true"]),
                   compiled)
        assert counters["stats"]["unique_graphs"] >= 2, "training and evaluation were compiled"
    finally:
        reset_compiled()
    train_loop(parse_spec({"model": {"family": "mlp"}}, overrides), plain)
    (got, checkpoint, _), (expected, plain_checkpoint, _) = compiled.reports[0], plain.reports[0]
    assert checkpoint is not None and plain_checkpoint is not None
    assert list(checkpoint["model"]) == list(plain_checkpoint["model"]), "no _orig_mod. prefix"
    assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-3)
    assert got["val_accuracy"] == pytest.approx(expected["val_accuracy"], abs=0.02)


def test_a_model_that_cannot_compile_fails_with_one_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """The failure users meet most: inductor finds no C++ compiler (here: a missing one)."""
    import torch._inductor.config as inductor

    from trialforge.train.compilation import CompileError, reset_compiled
    from trialforge.train.failures import CODE_ERROR, failure_kind

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # nothing compiled before
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/g++",))
    spec = parse_spec({"model": {"family": "mlp", "width": 24}},
                      ["train.epochs=1", "train.compile=true"])
    try:
        with pytest.raises(CompileError) as raised:
            train_loop(spec, RecordingSession())
    finally:
        reset_compiled()
    message = str(raised.value)
    assert message.startswith("train.compile: torch.compile failed on the mlp model: "
                              "InvalidCxxCompiler: No working C++ compiler found")
    assert message.endswith("or set train.compile=false") and "\n" not in message
    assert failure_kind(raised.value) == CODE_ERROR


def test_channels_last_trains_a_cnn_like_the_default_layout() -> None:
    channels_last, default = RecordingSession(), RecordingSession()
    train_loop(_spec("train.epochs=1", "train.channels_last=true"), channels_last)
    train_loop(_spec("train.epochs=1"), default)
    (got, checkpoint, _), (expected, _, _) = channels_last.reports[0], default.reports[0]
    assert checkpoint is not None
    conv = checkpoint["model"]["features.0.weight"]
    assert conv.dim() == 4 and conv.is_contiguous(memory_format=torch.channels_last)
    for key in ("train_loss", "val_loss"):
        assert got[key] == pytest.approx(expected[key], rel=1e-4), key
