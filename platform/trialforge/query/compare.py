"""Pure transforms behind the compare page: reduce curves, pick columns, group and thin.

Kept out of the pages so they can be tested without Streamlit (which cannot drive chart
selections in tests) and reused by the CLI.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np
import pandas as pd

Reducer = Literal["last", "min", "max", "best epoch"]
# The first is the default: the scoring rule's (train.contract).
REDUCERS: tuple[Reducer, ...] = ("best epoch", "last", "min", "max")
# Headless Chromium draws ~500 points per series fast; 1,000 runs stay interactive below it.
MAX_POINTS = 500
MAX_GROUPS = 5  # curves grouped by a parameter: beyond a handful of bands nothing reads


def param_columns(trials: pd.DataFrame, only_differing: bool = False) -> list[str]:
    """The `params.*` columns, or only those whose value differs between runs (a missing
    value, as for a conditional parameter, counts as a value of its own)."""
    columns = [c for c in trials.columns if c.startswith("params.")]
    if only_differing:
        columns = [c for c in columns if trials[c].nunique(dropna=False) > 1]
    return columns


def reduce_metric(
    history: pd.DataFrame, key: str, how: Reducer, best_epochs: pd.Series | None = None
) -> pd.Series:
    """One value per run of metric `key`: its last, min or max value, or its value at the
    run's best epoch (the checkpoint kept for the objective; `best_epochs` by run id)."""
    values = history[history["key"] == key]
    by_run = values.groupby("run_id")["value"]
    if how == "last":
        return values.sort_values("step").groupby("run_id")["value"].last()
    if how == "min":
        return by_run.min()
    if how == "max":
        return by_run.max()
    if how == "best epoch":
        if best_epochs is None:
            raise ValueError("the best-epoch reducer needs each run's best epoch")
        steps = values["run_id"].map(best_epochs)
        return values[values["step"] == steps].groupby("run_id")["value"].last()
    raise ValueError(f"unknown reducer {how!r}; allowed: {', '.join(REDUCERS)}")


def selected_runs(
    trials: pd.DataFrame, states: Collection[str] | None = None,
    value_range: tuple[float, float] | None = None, value_column: str | None = None,
    picked_rows: Collection[int] = (),
) -> pd.DataFrame:
    """The runs every chart shows: the filtered table, narrowed to the rows a user picked
    (all of them while none is picked)."""
    keep = pd.Series(True, index=trials.index)
    if states:
        keep &= trials["state"].isin(list(states))
    if value_range is not None and value_column is not None:
        low, high = value_range
        keep &= trials[value_column].between(low, high) | trials[value_column].isna()
    filtered = trials[keep]
    if picked_rows:
        filtered = filtered.iloc[[i for i in picked_rows if i < len(filtered)]]
    return filtered


def thin_steps(history: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most `max_points` steps per run: evenly spaced, the first and last kept."""
    steps = np.sort(history["step"].unique())
    if len(steps) <= max_points:
        return history
    keep = steps[np.unique(np.linspace(0, len(steps) - 1, max_points).round().astype(int))]
    return history[history["step"].isin(keep)]


def curve_bands(
    history: pd.DataFrame, key: str, groups: pd.Series | None = None,
    max_points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Metric `key` by epoch, per group of runs (`groups`: a label by run id; one group
    when None): mean, std, min, max and how many runs reached each epoch."""
    values = thin_steps(history[history["key"] == key], max_points)
    labels = groups.astype(str) if groups is not None else None
    group = values["run_id"].map(labels) if labels is not None else "all runs"
    values = values.assign(group=group).dropna(subset=["group"])
    bands = values.groupby(["group", "step"])["value"].agg(["mean", "std", "min", "max", "count"])
    return bands.reset_index().fillna({"std": 0.0})


def run_lines(
    history: pd.DataFrame, key: str, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Every run's curve of `key` as one x/y pair with NaN gaps between runs: drawn as a
    single trace, a thousand runs cost what one does."""
    values = thin_steps(history[history["key"] == key], max_points).sort_values(
        ["run_id", "step"]
    )
    if values.empty:
        return np.array([]), np.array([])
    x = values["step"].to_numpy(dtype=float)
    y = values["value"].to_numpy(dtype=float)
    breaks = np.flatnonzero(values["run_id"].to_numpy()[1:] != values["run_id"].to_numpy()[:-1])
    return np.insert(x, breaks + 1, np.nan), np.insert(y, breaks + 1, np.nan)


def group_labels(values: pd.Series, max_groups: int = MAX_GROUPS) -> pd.Series:
    """Labels to group runs by a parameter: its values, or for a number with more distinct
    values than `max_groups` (a learning rate), its quantile bins `Q1 0.0001-0.002`, ...
    (equal-sized groups, whatever the scale)."""
    if values.nunique() <= max_groups or not pd.api.types.is_numeric_dtype(values):
        return values.astype(str).where(values.notna(), "(unset)")
    codes = pd.qcut(values, q=max_groups, labels=False, duplicates="drop")
    spans = values.groupby(codes).agg(["min", "max"])
    names = {code: f"Q{int(code) + 1} {row['min']:.3g}-{row['max']:.3g}"
             for code, row in spans.iterrows()}
    return codes.map(names).where(values.notna(), "(unset)")
