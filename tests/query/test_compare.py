"""The compare page's pure transforms, on small hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialforge.query import compare, filter_sweeps


def history(curves: dict[str, list[float]], key: str = "val_accuracy") -> pd.DataFrame:
    rows = [(run, key, step, value) for run, values in curves.items()
            for step, value in enumerate(values, start=1)]
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])


CURVES = history({"a": [0.5, 0.9, 0.7], "b": [0.2, 0.4], "c": [0.6, 0.6, 0.8]})


@pytest.mark.parametrize(("how", "expected"), [
    ("last", {"a": 0.7, "b": 0.4, "c": 0.8}),
    ("min", {"a": 0.5, "b": 0.2, "c": 0.6}),
    ("max", {"a": 0.9, "b": 0.4, "c": 0.8}),
])
def test_reduce_metric(how: compare.Reducer, expected: dict[str, float]) -> None:
    assert compare.reduce_metric(CURVES, "val_accuracy", how).to_dict() == expected


def test_reduce_metric_at_each_runs_best_epoch() -> None:
    best = pd.Series({"a": 2, "b": 1, "c": 3})
    reduced = compare.reduce_metric(CURVES, "val_accuracy", "best epoch", best)
    assert reduced.to_dict() == {"a": 0.9, "b": 0.2, "c": 0.8}
    with pytest.raises(ValueError, match="best epoch"):
        compare.reduce_metric(CURVES, "val_accuracy", "best epoch")


def test_reduce_metric_rejects_an_unknown_reducer() -> None:
    with pytest.raises(ValueError, match="allowed: best epoch, last, min, max"):
        compare.reduce_metric(CURVES, "val_accuracy", "mean")  # type: ignore[arg-type]


def test_param_columns_only_differing_counts_missing_as_a_value() -> None:
    trials = pd.DataFrame({
        "params.lr": [0.1, 0.2, 0.3], "params.seed": [0, 0, 0],
        "params.hidden": [64, 64, None],  # conditional: unset in one run
        "metrics.acc": [1, 2, 3],
    })
    assert compare.param_columns(trials) == ["params.lr", "params.seed", "params.hidden"]
    assert compare.param_columns(trials, only_differing=True) == ["params.lr", "params.hidden"]


def test_selected_runs_filters_then_narrows_to_the_picked_rows() -> None:
    trials = pd.DataFrame({"state": ["completed", "stopped_early", "completed", "failed"],
                           "value": [0.9, 0.5, 0.7, None]})
    assert list(compare.selected_runs(trials).index) == [0, 1, 2, 3]
    assert list(compare.selected_runs(trials, states=["completed"]).index) == [0, 2]
    in_range = compare.selected_runs(trials, value_range=(0.6, 1.0), value_column="value")
    assert list(in_range.index) == [0, 2, 3]  # a run without a value is not filtered out
    filtered = compare.selected_runs(trials, states=["completed"])
    assert list(compare.selected_runs(filtered, picked_rows=[1, 7]).index) == [2]


def test_curve_bands_give_mean_spread_and_count_per_group_and_epoch() -> None:
    groups = pd.Series({"a": "relu", "b": "tanh", "c": "relu"})
    bands = compare.curve_bands(CURVES, "val_accuracy", groups).set_index(["group", "step"])
    relu_1 = bands.loc[("relu", 1)]
    assert relu_1["mean"] == pytest.approx(0.55)
    assert relu_1["std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert (relu_1["min"], relu_1["max"], relu_1["count"]) == (0.5, 0.6, 2)
    assert bands.loc[("tanh", 2), "count"] == 1
    assert bands.loc[("tanh", 1), "std"] == 0.0  # one run: no spread, not NaN
    assert set(compare.curve_bands(CURVES, "val_accuracy")["group"]) == {"all runs"}


def test_run_lines_put_every_run_in_one_series_with_gaps() -> None:
    x, y = compare.run_lines(CURVES, "val_accuracy")
    assert len(x) == 8 + 2  # 8 points, a gap between each of 3 runs
    assert np.isnan(x[3]) and np.isnan(y[3]) and np.isnan(x[6])
    assert list(y[:3]) == [0.5, 0.9, 0.7]


def test_thin_steps_keeps_at_most_max_points_with_both_ends() -> None:
    long = history({"a": list(np.linspace(0, 1, 2000))})
    thin = compare.thin_steps(long, max_points=500)
    assert 490 <= thin["step"].nunique() <= 500
    assert {1, 2000} <= set(thin["step"])
    assert compare.thin_steps(CURVES, max_points=500) is CURVES


def test_group_labels_bin_a_continuous_parameter_into_quantiles() -> None:
    lr = pd.Series(np.geomspace(1e-4, 1e-1, 100))
    labels = compare.group_labels(lr, max_groups=4)
    assert labels.nunique() == 4
    assert labels.value_counts().tolist() == [25, 25, 25, 25]
    assert sorted(labels.unique())[0].startswith("Q1 0.0001-")
    assert compare.group_labels(pd.Series(["relu", None])).tolist() == ["relu", "(unset)"]


def test_filter_sweeps_by_text_state_and_family() -> None:
    sweeps = pd.DataFrame({"id": ["ab12", "cd34", "ef56"], "name": ["cnn-digits", "mlp", "gan"],
                           "state": ["finished", "failed", "finished"],
                           "family": ["cnn", "mlp", "gan"]})
    assert list(filter_sweeps(sweeps)["id"]) == ["ab12", "cd34", "ef56"]
    assert list(filter_sweeps(sweeps, "DIGITS")["id"]) == ["ab12"]
    assert list(filter_sweeps(sweeps, "cd")["id"]) == ["cd34"]  # an id prefix
    assert list(filter_sweeps(sweeps, states=["finished"], families=["gan"])["id"]) == ["ef56"]
    assert filter_sweeps(sweeps, "zzz").empty
