"""Compare: the runs of one or more sweeps. The runs table is the filter every chart follows."""

from __future__ import annotations

import json

import charts
import loaders
import streamlit as st

from trialforge.query import compare
from trialforge.query.studies import StudyTrials

CHARTS = ["Learning curves", "Parallel coordinates", "Confirmed", "Importance", "Slices",
          "History", "Timeline"]

where = loaders.home()
st.title("Compare runs")
catalog = loaders.sweeps_or_stop(where)

ids = list(catalog["id"])
labels = dict(zip(catalog["id"], catalog["id"] + " " + catalog["name"], strict=True))
asked = [i for i in st.query_params.get_all("sweep") if i in labels] or ids[:1]
chosen = st.multiselect("Sweeps", ids, default=asked, format_func=labels.__getitem__)
if not chosen:
    st.info("Choose one or more sweeps.")
    st.stop()
st.query_params["sweep"] = chosen
records = catalog.set_index("id").loc[chosen].reset_index()
for record in records[records["state"] == "running"].itertuples():
    st.info(f"Sweep {record.id} is still running: its runs so far are shown; they refresh "
            f"every {loaders.LIVE_TTL} s on rerun.")
runs = loaders.trials(where, records)
if runs.empty:
    st.info("No trial has reported yet. Runs appear here once their first epoch is logged.")
    st.stop()

objective = str(records["metric"].iloc[0])
metrics = sorted(c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics."))
if not metrics:
    st.info("These runs have logged no metrics yet.")
    st.stop()
metric_col, reducer_col, group_col, differ_col = st.columns([2, 2, 2, 1])
metric = metric_col.selectbox("Metric", metrics,
                              index=metrics.index(objective) if objective in metrics else 0)
reducer = reducer_col.radio("Value of each run", compare.REDUCERS, horizontal=True)
only_differing = differ_col.toggle("Differing params only", value=True)
params = compare.param_columns(runs, only_differing)
names = [c.removeprefix("params.") for c in params]
group_by = group_col.selectbox("Group curves by", ["(none)", *names])

history = loaders.histories(where.tracking_uri, tuple(runs["run_id"]), (metric,))
value = f"{metric} ({reducer})"
reduced = compare.reduce_metric(history, metric, reducer, runs.set_index("run_id")["best_epoch"])
runs[value] = runs["run_id"].map(reduced)

state_col, range_col = st.columns([1, 2])
states = state_col.multiselect("States", sorted(runs["state"].dropna().unique()))
finite = runs[value].dropna()
value_range = None
if len(finite) and finite.min() < finite.max():
    low, high = float(finite.min()), float(finite.max())
    value_range = range_col.slider(value, low, high, (low, high), format="%.4g")
    if value_range == (low, high):
        value_range = None  # the whole range: nothing to brush on the chart's axis
filtered = compare.selected_runs(runs, states, value_range, value)
confirming = "stage" in runs and (runs["stage"] == "confirm").any()
# Shown when some run has them: the earlier sweep a warm-started point came from, whether a
# run met search.constraints, how many exploits a pbt/pb2 trial took.
marks = [column for column in ("origin", "feasible")
         if column in runs and runs[column].notna().any()]
marks += ["exploits"] if "exploits" in runs and runs["exploits"].fillna(0).any() else []
shown = ["sweep_id", "name", *(["stage", "config_id", "seed"] if confirming else []), "state",
         *marks, value, *params, "seconds", "start"]
event = st.dataframe(
    filtered[shown], hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs",
    column_config={
        "name": st.column_config.TextColumn("trial"),
        value: st.column_config.NumberColumn(value, format="%.4f"),
        **{c: c.removeprefix("params.") for c in params},
        "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
        "start": st.column_config.DatetimeColumn("started", format="HH:mm:ss"),
    },
)
selected = compare.selected_runs(filtered, picked_rows=event.selection.rows)
st.caption(f"Charts show {len(selected)} of {len(runs)} runs"
           + (" (the rows you selected)." if event.selection.rows else
              "; select rows to narrow them."))
if selected.empty:
    st.stop()

# Lazy tabs: only the open one runs and draws, so a thousand runs stay quick to browse.
# Bound to the URL (?chart=...), a chart can be linked to.
tabs = dict(zip(CHARTS, st.tabs(CHARTS, key="chart", on_change="rerun", bind="query-params"),
                strict=True))
if tabs["Learning curves"].open:
    with tabs["Learning curves"]:
        shown_history = history[history["run_id"].isin(selected["run_id"])]
        groups = (None if group_by == "(none)" else
                  compare.group_labels(selected.set_index("run_id")[f"params.{group_by}"]))
        st.plotly_chart(charts.learning_curves(shown_history, metric, groups,
                                               None if groups is None else group_by),
                        key="curves")


def studies() -> dict[str, StudyTrials]:
    """The Optuna study of each chosen sweep that has one (read only by tabs that need it)."""
    found = {r.id: loaders.study(where.db_url, r.study_name) for r in records.itertuples()}
    return {sweep_id: study for sweep_id, study in found.items() if study is not None}


if tabs["Parallel coordinates"].open:
    with tabs["Parallel coordinates"]:
        searched = set().union(*(s.distributions for s in studies().values()))
        log_params = set().union(*(s.log_params for s in studies().values()))
        axes = [n for n in names if n in searched] or names
        if axes:
            st.plotly_chart(charts.parallel_coordinates(selected, axes, value, value,
                                                        log_params, value_range),
                            key="parcoords")
        else:
            st.info("Every run has the same parameters: nothing to compare across.")

if tabs["Confirmed"].open:
    with tabs["Confirmed"]:
        entries = {r.id: json.loads(r.confirmed) for r in records.itertuples() if r.confirmed}
        if entries:
            st.plotly_chart(charts.confirmed(entries, objective), key="confirmed")
            st.caption("Each configuration's mean over its new seeds, with a 95% Student-t "
                       "interval; the champion is the best mean.")
        else:
            st.info("No confirm stage in these sweeps: each best is a single seed's. Add "
                    "search.confirm to retrain the top configurations over new seeds.")

SEARCH_TABS = {"Importance": "importance", "Slices": "slice", "History": "history"}
for title, name in SEARCH_TABS.items():
    if not tabs[title].open:
        continue
    with tabs[title]:
        chosen_studies = studies()
        if not chosen_studies:
            st.info("These sweeps searched no space (no Optuna study): every trial trained "
                    "the spec as written.")
            continue
        sweep_id = (next(iter(chosen_studies)) if len(chosen_studies) == 1 else
                    st.selectbox("Study of sweep", list(chosen_studies),
                                 format_func=labels.__getitem__))
        sweep_metric = str(records.set_index("id").loc[sweep_id, "metric"])
        trial_ids = set(selected["trial_id"].dropna())
        figure = charts.search_chart(name, chosen_studies[sweep_id], trial_ids, sweep_metric)
        if isinstance(figure, str):
            st.info(figure)
        else:
            st.plotly_chart(figure, key=name)

if tabs["Timeline"].open:
    with tabs["Timeline"]:
        st.plotly_chart(charts.timeline(selected), key="timeline")
        st.caption("stopped_early runs were cut by the scheduler; failed and diverged runs "
                   "say why on the Run page.")
