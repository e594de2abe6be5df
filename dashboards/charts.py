"""Plotly figures of the compare and run pages, built from `trialforge.query` frames.

Optuna's own `optuna.visualization` draws what is about the search (importance, slices,
history); these draw what is about runs. Each chart is one or a few traces whatever the
number of runs, so a thousand runs stay fast in a browser.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

from trialforge.query import compare
from trialforge.query.studies import StudyTrials, as_study

STATE_COLORS = {
    "completed": "#2e7d32", "stopped_early": "#f9a825", "diverged": "#6a1b9a",
    "failed": "#c62828", "interrupted": "#546e7a", "running": "#1565c0",
}
# fANOVA takes over a minute past 1,000 trials; PED-ANOVA about a second at 10,000.
_PED_ANOVA_FROM = 100
_SVG_POINTS = 50_000


def parallel_coordinates(
    runs: pd.DataFrame, params: Sequence[str], value_column: str, value_name: str,
    log_params: Collection[str] = (), value_range: tuple[float, float] | None = None,
) -> go.Figure:
    """One line per run across its parameters, colored by `value_column`. Log-sampled
    parameters get log axes, categories labelled axes; `value_range` brushes the last axis."""
    dimensions = [_dimension(runs[f"params.{name}"], name, name in log_params)
                  for name in params]
    value = runs[value_column].astype(float)
    last = {"label": value_name, "values": value}
    if value_range is not None:
        last["constraintrange"] = list(value_range)
    dimensions.append(last)
    figure = go.Figure(go.Parcoords(
        line={"color": value.fillna(value.min()), "colorscale": "Viridis", "showscale": True,
              "colorbar": {"title": {"text": value_name}}},
        dimensions=dimensions,
    ))
    figure.update_layout(margin={"l": 60, "r": 40, "t": 50, "b": 30})
    return figure


def _dimension(column: pd.Series, label: str, log: bool) -> dict[str, object]:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(float)
        if log and (values.dropna() > 0).all() and values.notna().any():
            exponents = np.log10(values)
            ticks = np.arange(math.floor(exponents.min()), math.ceil(exponents.max()) + 1)
            return {"label": f"{label} (log)", "values": exponents, "tickvals": ticks,
                    "ticktext": [f"1e{int(t)}" for t in ticks]}
        return {"label": label, "values": values}
    text = column.astype(str)  # a category, a flag, or missing for a conditional parameter
    categories = sorted(text.unique())
    codes = text.map({name: i for i, name in enumerate(categories)})
    return {"label": label, "values": codes, "tickvals": list(range(len(categories))),
            "ticktext": categories}


def learning_curves(
    history: pd.DataFrame, key: str, groups: pd.Series | None = None,
    group_name: str | None = None,
) -> go.Figure:
    """Metric `key` by epoch: every run faint behind (one trace), and per group its mean
    with a band of one standard deviation (one trace each)."""
    figure = go.Figure()
    x, y = compare.run_lines(history, key)
    # One SVG path draws fast up to tens of thousands of points and spares the browser a
    # WebGL context (seconds without a GPU); beyond that WebGL wins.
    lines = go.Scatter if len(x) <= _SVG_POINTS else go.Scattergl
    figure.add_trace(lines(
        x=x, y=y, mode="lines", name="runs", line={"width": 1, "color": "rgba(120,120,120,0.25)"},
        hoverinfo="skip",
    ))
    bands = compare.curve_bands(history, key, groups)
    palette = px.colors.qualitative.Plotly
    for i, (group, band) in enumerate(bands.groupby("group", sort=True)):
        color = palette[i % len(palette)]
        label = f"{group_name}={group}" if group_name else str(group)
        steps = band["step"].to_numpy()
        low, high = band["mean"] - band["std"], band["mean"] + band["std"]
        figure.add_trace(go.Scatter(
            x=np.concatenate([steps, steps[::-1]]), y=np.concatenate([high, low[::-1]]),
            mode="lines", fill="toself", fillcolor=_faded(color), line={"width": 0},
            hoverinfo="skip",
            showlegend=False, name=f"{label} ±1 std",
        ))
        figure.add_trace(go.Scatter(
            x=steps, y=band["mean"], mode="lines", name=label, line={"color": color},
            customdata=band["count"], hovertemplate="epoch %{x}: %{y:.4g} (%{customdata} runs)",
        ))
    figure.update_layout(xaxis_title="epoch", yaxis_title=key, legend_title=group_name or "")
    return figure


def _faded(hex_color: str) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.2)"


def timeline(runs: pd.DataFrame) -> go.Figure:
    """When each trial ran (a row each, in start order), colored by how it ended: a segment
    per trial, one SVG path per state (a thousand bars, one element each, would crawl)."""
    frame = runs.assign(end=runs["end"].fillna(pd.Timestamp.now(tz="UTC")))
    frame = frame.sort_values("start").reset_index(drop=True).assign(row=lambda f: f.index)
    figure = go.Figure()
    for state, group in frame.groupby("state", sort=True):
        gap = [None] * len(group)
        x = [v for triple in zip(group["start"], group["end"], gap, strict=True) for v in triple]
        y = [v for triple in zip(group["row"], group["row"], gap, strict=True) for v in triple]
        names = [v for n in group["name"] for v in (n, n, None)]
        figure.add_trace(go.Scatter(
            x=x, y=y, mode="lines", name=str(state), text=names,
            line={"color": STATE_COLORS.get(str(state), "#888"),
                  "width": max(2, min(12, 600 // max(len(frame), 1)))},
            hovertemplate="%{text}<br>%{x}<extra>" + str(state) + "</extra>",
        ))
    figure.update_yaxes(autorange="reversed", title="trial (by start)")
    figure.update_xaxes(type="date", title=None)
    return figure


def confirmed(entries: dict[str, list[dict[str, Any]]], metric: str) -> go.Figure:
    """Each confirmed configuration (`search.confirm`, per sweep): its mean over new seeds
    with its 95% interval as error bars, and each seed's score beside it."""
    figure = go.Figure()
    for sweep_id, configs in entries.items():
        labels = [f"{sweep_id[:8]} {entry['config_id']}" for entry in configs]
        means = np.array([entry["mean"] for entry in configs], dtype=float)
        figure.add_trace(go.Scatter(
            x=labels, y=means.tolist(), mode="markers", name=f"{sweep_id[:8]} mean",
            marker={"size": 12, "symbol": "diamond"},
            error_y={"type": "data", "symmetric": False,
                     "array": (np.array([e["high"] for e in configs], dtype=float)
                               - means).tolist(),
                     "arrayminus": (means - np.array([e["low"] for e in configs],
                                                     dtype=float)).tolist()},
            hovertemplate="%{x}<br>mean %{y:.4f}<extra>95% interval</extra>"))
        seeds = [(label, value) for label, entry in zip(labels, configs, strict=True)
                 for value in entry["values"]]
        figure.add_trace(go.Scatter(
            x=[label for label, _ in seeds], y=[value for _, value in seeds], mode="markers",
            name=f"{sweep_id[:8]} seeds", marker={"size": 6, "opacity": 0.6}))
    figure.update_yaxes(title=metric)
    figure.update_xaxes(title="configuration (best mean first)")
    return figure


def run_curves(history: pd.DataFrame) -> go.Figure:
    """Every per-epoch metric of one run, a panel each (their scales differ)."""
    rows = math.ceil(history["key"].nunique() / 3)
    figure = px.line(history, x="step", y="value", facet_col="key", facet_col_wrap=3,
                     markers=True, facet_row_spacing=0.3 / rows, height=220 * rows + 60)
    figure.update_yaxes(matches=None, showticklabels=True, title=None)
    figure.update_xaxes(title=None, showticklabels=True)
    figure.for_each_annotation(lambda a: a.update(text=a.text.removeprefix("key=")))
    return figure


def search_chart(
    name: str, data: StudyTrials, trial_ids: Collection[str] | None, objective: str
) -> go.Figure | str:
    """Optuna's `importance`, `slice` or `history` chart of the chosen trials; where it
    cannot be drawn, the reason instead."""
    study = as_study(data, trial_ids)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return "needs at least two completed trials among the selected runs"
    target = None
    if len(data.directions) > 1:  # several objectives: analyse the first, the sweep's metric
        def target(trial: optuna.trial.FrozenTrial) -> float:
            return float(trial.values[0])
    if name == "importance":
        evaluator = (PedAnovaImportanceEvaluator() if len(complete) >= _PED_ANOVA_FROM
                     else FanovaImportanceEvaluator(seed=0))
        try:
            return optuna.visualization.plot_param_importances(
                study, evaluator=evaluator, target=target, target_name=objective)
        except (RuntimeError, ValueError) as exc:  # e.g. every parameter took one value
            return f"cannot rank the parameters: {exc}"
    if name == "slice":
        return webgl(optuna.visualization.plot_slice(study, target=target,
                                                     target_name=objective))
    if name == "history":
        return webgl(optuna.visualization.plot_optimization_history(
            study, target=target, target_name=objective))
    raise ValueError(f"unknown search chart {name!r}")


def webgl(figure: go.Figure) -> go.Figure:
    """The figure with its scatter traces drawn by WebGL: Optuna draws SVG, which takes
    seconds in a browser for a thousand points per panel."""
    traces = [
        go.Scattergl({k: v for k, v in trace.to_plotly_json().items() if k != "type"},
                     skip_invalid=True) if trace.type == "scatter" else trace
        for trace in figure.data
    ]
    return go.Figure(traces, figure.layout)
