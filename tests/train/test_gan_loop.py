"""The GAN loop, its judge and its Fréchet distance, against a recording session (no Ray)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import trialforge.train.judge as judge_module
from support import RecordingSession
from trialforge.data.dataset import Dataset
from trialforge.spec import SweepSpec, parse_spec
from trialforge.train.gan_loop import gan_loop, sample_grid
from trialforge.train.judge import (
    cached_judge,
    fit_judge,
    frechet_distance,
    judge_features,
    judge_from_state,
)

METRIC_KEYS = {"epoch", "d_loss", "g_loss", "val_fid", "epoch_seconds", "params", "latency_us"}
GRID = 8 * 8 * 4 + 7  # 8 digits of 8 px zoomed x4 per side, 7 gaps of 1 px

@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Nets this small only pay for intra-op threads, the more so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    """All sklearn digits as (N, 1, 8, 8) in [0, 1], split 80/20 with a fixed permutation."""
    bunch = load_digits()
    x = torch.tensor((bunch.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, val = order[:1437], order[1437:]
    return Dataset(name="digits", x_train=x[train], y_train=y[train], x_val=x[val],
                   y_val=y[val], num_classes=10)


@pytest.fixture(scope="module")
def judge_state(digits: Dataset) -> dict[str, torch.Tensor]:
    return fit_judge(digits.x_train, digits.y_train, digits.num_classes).state_dict()


@pytest.fixture(scope="module")
def small(digits: Dataset) -> Dataset:
    """A few hundred digits: enough for two quick epochs."""
    return Dataset(name="digits", x_train=digits.x_train[:256], y_train=digits.y_train[:256],
                   x_val=digits.x_val[:128], y_val=digits.y_val[:128], num_classes=10)


def _spec(*overrides: str) -> SweepSpec:
    raw = {"model": {"family": "gan", "channels": 8}, "train": {"epochs": 2, "batch_size": 64}}
    return parse_spec(raw, list(overrides))


# --- the judge and the distance ----------------------------------------------------------


def test_frechet_distance_is_zero_for_the_same_features_and_grows_with_a_shift() -> None:
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    near = frechet_distance(features, features + 0.1)
    far = frechet_distance(features, features + 1.0)
    assert near == pytest.approx(16 * 0.1**2, rel=1e-6)  # only the means differ
    assert 0 < near < far
    wider = frechet_distance(features, features * 2.0)  # same mean, other covariance
    assert wider > 1.0


def test_frechet_distance_survives_rank_deficient_features_and_flags_nan() -> None:
    features = torch.zeros(50, 8)
    features[:, 0] = torch.arange(50.0)  # 7 constant columns: singular covariances
    distance = frechet_distance(features, features.flip(0))
    assert distance == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(frechet_distance(features, features * math.nan))


def test_the_judge_classifies_digits(digits: Dataset, judge_state: dict[str, torch.Tensor]) -> None:
    judge = judge_from_state(judge_state, digits.input_shape, digits.num_classes)
    with torch.no_grad():
        accuracy = (judge(digits.x_val).argmax(dim=1) == digits.y_val).float().mean()
    assert float(accuracy) > 0.9
    features = judge_features(judge, digits.x_val)
    assert features.shape == (len(digits.x_val), 64)
    real_to_real = frechet_distance(features, judge_features(judge, digits.x_train))
    noise = judge_features(judge, torch.rand_like(digits.x_val))
    assert real_to_real < frechet_distance(features, noise) / 10, "noise is far from digits"


def test_fitting_a_judge_leaves_the_global_rng_alone(small: Dataset) -> None:
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    fit_judge(small.x_train[:64], small.y_train[:64], 10)
    assert torch.equal(torch.rand(3), expected)


def test_the_judge_is_fitted_once_then_loaded_from_the_cache(
    small: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits: list[int] = []

    def counting_fit(*args: Any, **kwargs: Any) -> nn.Module:
        fits.append(1)
        return fit_judge(*args, **kwargs)

    monkeypatch.setattr(judge_module, "fit_judge", counting_fit)
    first = cached_judge(tmp_path, small.x_train, small.y_train, 10, seed=0)
    second = cached_judge(tmp_path, small.x_train, small.y_train, 10, seed=0)
    assert len(fits) == 1
    assert [path.name.startswith("judge-") for path in tmp_path.iterdir()] == [True], "no temp"
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    cached_judge(tmp_path, small.x_train, small.y_train, 10, seed=1)  # another seed: another
    changed = small.x_train.clone()
    changed[0, 0, 0, 0] += 0.5
    cached_judge(tmp_path, changed, small.y_train, 10, seed=0)  # other content: another
    assert len(fits) == 3 and len(list(tmp_path.glob("judge-*.pt"))) == 3


# --- the loop ------------------------------------------------------------------------------


def test_two_epochs_report_metrics_checkpoints_and_samples(
    small: Dataset, judge_state: dict[str, torch.Tensor]
) -> None:
    session = RecordingSession()
    gan_loop(_spec(), session, small, judge_state)
    assert [state for _, _, state in session.reports] == ["running", "completed"]
    for epoch, ((metrics, checkpoint, _), figures) in enumerate(
        zip(session.reports, session.figures, strict=True), start=1
    ):
        assert set(metrics) == METRIC_KEYS
        assert metrics["epoch"] == epoch
        for key in METRIC_KEYS:
            assert math.isfinite(metrics[key]), key
        assert metrics["val_fid"] > 0 and metrics["latency_us"] > 0 and metrics["params"] > 0
        assert checkpoint is not None and checkpoint["epoch"] == epoch
        assert set(checkpoint) == {"model", "discriminator", "g_optimizer", "d_optimizer",
                                   "epoch", "input_shape", "num_classes", "example_shape",
                                   "latent_dim", "final_metrics"}
        assert checkpoint["input_shape"] == [1, 8, 8] and checkpoint["latent_dim"] == 32
        grid = np.asarray(figures["samples"]["image"])
        assert grid.shape == (GRID, GRID) and 0 <= grid.min() <= grid.max() <= 255


def test_without_a_judge_state_the_loop_fits_its_own(small: Dataset) -> None:
    session = RecordingSession()
    gan_loop(_spec("train.epochs=1"), session, small, None)
    (metrics, _, state), = session.reports
    assert state == "completed" and math.isfinite(metrics["val_fid"])


def test_a_restored_trial_continues_exactly_where_it_stopped(
    small: Dataset, judge_state: dict[str, torch.Tensor]
) -> None:
    spec = _spec("model.g_dropout=0.2", "model.d_batchnorm=true")
    whole = RecordingSession()
    gan_loop(spec, whole, small, judge_state)
    resumed = RecordingSession(restore=whole.reports[0][1])
    gan_loop(spec, resumed, small, judge_state)
    assert [metrics["epoch"] for metrics, _, _ in resumed.reports] == [2]
    expected, got = whole.reports[1][0], resumed.reports[0][0]
    for key in ("d_loss", "g_loss", "val_fid"):
        assert got[key] == pytest.approx(expected[key], rel=1e-5), key
    assert resumed.reports[0][2] == "completed"


def test_a_non_finite_loss_reports_diverged_and_stops(
    small: Dataset, judge_state: dict[str, torch.Tensor]
) -> None:
    # Adam's normalised steps and BCE-with-logits keep even lr=1e6 finite, so poison the data.
    x_train = small.x_train.clone()
    x_train[:] = math.nan
    poisoned = Dataset(name="digits", x_train=x_train, y_train=small.y_train,
                       x_val=small.x_val, y_val=small.y_val, num_classes=10)
    session = RecordingSession()
    gan_loop(_spec(), session, poisoned, judge_state)
    (metrics, checkpoint, state), = session.reports
    assert state == "diverged" and metrics["epoch"] == 1
    assert math.isnan(metrics["d_loss"]) and math.isnan(metrics["val_fid"])
    assert checkpoint is None and session.figures == [{}]


def test_colour_samples_make_an_rgb_grid() -> None:
    images = torch.rand(70, 3, 32, 32)
    grid = sample_grid(images)
    side = 8 * 32 * 4 + 7
    assert grid.shape == (side, side, 3) and grid.dtype == np.uint8
    assert (grid[128, :, :] == 255).all(), "a white gap after the first row of images"
    expected = (images[0, :, 0, 0] * 255).round().to(torch.uint8).numpy()
    assert (grid[:4, :4] == expected).all(), "each pixel zoomed to 4x4"
