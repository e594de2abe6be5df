"""Models: registry versions with their aliases and the runs behind them; move an alias."""

from __future__ import annotations

import loaders
import streamlit as st

from trialforge.errors import TrialforgeError
from trialforge.registry.aliases import set_alias

where = loaders.home()
st.title("Models")
frame = loaders.models(where.tracking_uri) if loaders.tracking_exists(where) else None
if frame is None or frame.empty:
    st.info("No registered models yet. A sweep whose spec has `register: {name: ...}` "
            "registers its best model when it finishes.")
    st.stop()

table = frame.assign(
    sweep="compare?sweep=" + frame["sweep_id"].fillna(""),
    run="run?run=" + frame["run_id"].fillna(""),
)
st.dataframe(
    table, hide_index=True, key="models",
    column_order=["name", "version", "aliases", "metric", "value", "sweep", "run", "created"],
    column_config={
        "value": st.column_config.NumberColumn(format="%.4f"),
        "sweep": st.column_config.LinkColumn("sweep", display_text=r"compare\?sweep=(.*)"),
        "run": st.column_config.LinkColumn("best run", display_text="open run"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)

st.subheader("Set an alias")
name_col, version_col, alias_col = st.columns(3)
name = name_col.selectbox("Model", sorted(frame["name"].unique()))
versions = frame[frame["name"] == name]
version = version_col.selectbox("Version", list(versions["version"]))
alias = alias_col.selectbox("Alias", ["champion", "challenger"], accept_new_options=True)
if st.button("Set alias ..."):
    st.session_state["pending_alias"] = (name, int(version), str(alias))

pending = st.session_state.get("pending_alias")
if pending:
    name, version, alias = pending
    holder = versions[versions["aliases"].str.split(", ").apply(lambda a: alias in a)]
    now = f" (now on version {holder['version'].iloc[0]})" if len(holder) else ""
    st.warning(f"Point alias **{alias}** of **{name}** at version **{version}**{now}? "
               f"Anything loading `models:/{name}@{alias}` gets this version next time.")
    confirm_col, cancel_col, _ = st.columns([1, 1, 6])
    if confirm_col.button("Confirm", type="primary"):
        del st.session_state["pending_alias"]
        try:
            set_alias(where.tracking_uri, name, version, alias)
        except TrialforgeError as exc:
            st.error(str(exc))
        else:
            loaders.models.clear()
            st.session_state["alias_done"] = f"{alias} → {name} version {version}"
            st.rerun()
    if cancel_col.button("Cancel"):
        del st.session_state["pending_alias"]
        st.rerun()
if done := st.session_state.pop("alias_done", None):
    st.success(f"Alias set: {done}")
