"""Run: one trial's params, curves, images, checkpoint and lineage, and a link to MLflow."""

from __future__ import annotations

import charts
import loaders
import pandas as pd
import streamlit as st

from trialforge.errors import NotFoundError
from trialforge.tasks import COST_METRICS

where = loaders.home()
st.title("Run")
catalog = loaders.sweeps_or_stop(where)

run_id = st.query_params.get("run")
if not run_id:  # no link followed: pick a sweep, then one of its runs
    labels = dict(zip(catalog["id"], catalog["id"] + " " + catalog["name"], strict=True))
    sweep_id = st.selectbox("Sweep", list(labels), format_func=labels.__getitem__)
    runs = loaders.trials(where, catalog[catalog["id"] == sweep_id])
    if runs.empty:
        st.info("This sweep has no trial runs yet.")
        st.stop()
    record = catalog.set_index("id").loc[sweep_id]
    objective = f"metrics.{record['metric']}"
    if objective in runs:  # best run first
        runs = runs.sort_values(objective, ascending=record["mode"] == "min", na_position="last")
    names = dict(zip(runs["run_id"], runs["name"] + " (" + runs["state"].fillna("?") + ")",
                     strict=True))
    run_id = st.selectbox("Run", list(names), format_func=names.__getitem__)
try:
    detail = loaders.run(where.tracking_uri, run_id)
except NotFoundError as exc:
    st.error(str(exc))
    st.stop()

st.header(f"{detail.name} · {detail.state or detail.status}")
facts = {"run id": detail.run_id, "sweep": detail.sweep_id, "MLflow status": detail.status,
         "started": detail.start, "ended": detail.end, "best epoch": detail.best_epoch}
st.caption(" · ".join(f"{k}: {v}" for k, v in facts.items() if v is not None))
if detail.reason:
    st.error(f"Why it ended: {detail.reason}")
url = loaders.mlflow_run_url(where, detail.experiment_id, detail.run_id)
if url:
    st.link_button("Open in the MLflow UI", url)
else:
    st.caption("MLflow UI: run `mlflow ui --backend-store-uri "
               f"{where.tracking_uri}` and set `{loaders.MLFLOW_UI_VARIABLE}` to its address "
               "for a link here.")

params_col, metrics_col = st.columns(2)
params_col.markdown("**Parameters**")
params_col.dataframe(pd.DataFrame(sorted(detail.params.items()), columns=["param", "value"]),
                     hide_index=True)
metrics_col.markdown("**Last metrics**")
metrics_col.dataframe(pd.DataFrame(sorted(detail.metrics.items()), columns=["metric", "value"]),
                      hide_index=True)
if detail.lineage:
    st.markdown("**Lineage**")
    st.dataframe(pd.DataFrame(sorted(detail.lineage.items()), columns=["tag", "value"]),
                 hide_index=True)

st.subheader("Curves by epoch")
keys = tuple(sorted(k for k in detail.metrics if k not in COST_METRICS))
history = loaders.histories(where.tracking_uri, (detail.run_id,), keys) if keys else None
if history is None or history.empty:
    st.info("This run has logged no per-epoch metrics.")
else:
    st.plotly_chart(charts.run_curves(history), key="run_curves")

st.subheader("Artifacts")
if not detail.artifacts:
    st.info("No artifacts: a run keeps a checkpoint and its images from its best epoch on.")
for image in detail.images:
    st.image(loaders.artifact_bytes(where.tracking_uri, detail.run_id, image),
             caption=image, width=480)
for artifact in detail.checkpoint:
    size = f"{artifact.size / 1e6:.2f} MB" if artifact.size else "size unknown"
    st.markdown(f"Checkpoint `{artifact.path}` ({size}), epoch {detail.best_epoch}: "
                f"`runs:/{detail.run_id}/{artifact.path}`")
    if artifact.size is not None and artifact.size < 50e6:
        st.download_button(
            "Download checkpoint", key=artifact.path, file_name=artifact.path.split("/")[-1],
            data=loaders.artifact_bytes(where.tracking_uri, detail.run_id, artifact.path),
        )
