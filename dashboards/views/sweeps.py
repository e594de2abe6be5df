"""Sweeps: every sweep in the catalog; filter, then open one or several to compare."""

from __future__ import annotations

import json

import loaders
import streamlit as st

from trialforge.query import filter_sweeps

where = loaders.home()
st.title("Sweeps")
catalog = loaders.sweeps_or_stop(where)

name_col, state_col, family_col = st.columns(3)
text = name_col.text_input("Name or id contains")
states = state_col.multiselect("State", sorted(catalog["state"].unique()))
families = family_col.multiselect("Family", sorted(catalog["family"].unique()))
shown = filter_sweeps(catalog, text, states, families)

table = shown.assign(
    open="compare?sweep=" + shown["id"],
    trials=shown["trials_completed"].astype(str) + " done, " + shown["trials_stopped"].astype(str)
    + " early, " + shown["trials_failed"].astype(str) + " failed / "
    + shown["trials_total"].astype(str),
    # search.warm_start: the earlier sweeps its sampler started from.
    warm_from=shown["warm_start"].map(
        lambda summary: ", ".join(json.loads(summary)["sources"])
        if isinstance(summary, str) else None),
)
event = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="sweeps",
    column_order=["open", "id", "name", "family", "state", "metric", "best_value", "test_value",
                  "trials", "stop_reason", "warm_from", "seconds", "created_at",
                  "model_version", "error"],
    column_config={
        "open": st.column_config.LinkColumn("open", display_text="compare"),
        "best_value": st.column_config.NumberColumn("best", format="%.4f"),
        "test_value": st.column_config.NumberColumn(
            "test", format="%.4f", help="the champion on the test split, scored once"),
        "seconds": st.column_config.NumberColumn("duration (s)", format="%.1f"),
        "created_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "model_version": "model",
        "stop_reason": st.column_config.TextColumn("stopped early", help="search.stop"),
        "warm_from": st.column_config.TextColumn(
            "warm start from", help="the earlier sweeps its sampler started from"),
    },
)
picked = list(shown.iloc[event.selection.rows]["id"])
st.caption(f"{len(shown)} of {len(catalog)} sweeps. Select rows to compare several at once.")
if st.button("Compare selected", disabled=not picked, type="primary"):
    st.switch_page("views/compare.py", query_params={"sweep": picked})
