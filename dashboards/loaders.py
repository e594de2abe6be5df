"""Cached reads for the pages, each a thin wrapper of a `trialforge.query` function.

A finished sweep never changes, so its reads are kept for an hour; anything that may still
change (a running sweep, the sweep list, the registry) for a few seconds.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import streamlit as st

from trialforge import query
from trialforge.home import Home, resolve_home, sqlite_file
from trialforge.query.studies import StudyTrials

LIVE_TTL = 5
FINISHED_TTL = 3600
# Where a user's MLflow UI listens when tracking is a local sqlite file (`mlflow ui`).
MLFLOW_UI_VARIABLE = "TRIALFORGE_MLFLOW_UI"


@st.cache_resource
def home() -> Home:
    """The stores, from the same variables as the CLI (`trialforge dashboard` sets them)."""
    return resolve_home()


def tracking_exists(where: Home) -> bool:
    """False while an embedded MLflow file does not exist yet (opening it would create it)."""
    path = sqlite_file(where.tracking_uri)
    return path is None or path.exists()


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def sweeps(db_url: str) -> pd.DataFrame:
    return query.sweeps(db_url)


def sweeps_or_stop(where: Home) -> pd.DataFrame:
    """The catalog's sweeps; with none yet, the page says how to start one and ends there."""
    catalog = sweeps(where.db_url)
    if catalog.empty:
        st.info("No sweeps yet. Run one, then come back: "
                "`trialforge sweep run jobs/cnn_digits.yaml`")
        st.stop()
    return catalog


def trials(where: Home, records: pd.DataFrame) -> pd.DataFrame:
    """The trial runs of the catalog rows `records`, one frame."""
    frames = [
        _trials(where.tracking_uri, str(r.mlflow_experiment_id), str(r.id))
        if r.state != "running" else _live_trials(where.tracking_uri,
                                                  str(r.mlflow_experiment_id), str(r.id))
        for r in records.itertuples() if r.mlflow_experiment_id
    ]
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@st.cache_data(ttl=FINISHED_TTL, show_spinner="Reading trial runs ...")
def _trials(tracking_uri: str, experiment_id: str, sweep_id: str) -> pd.DataFrame:
    return query.trials(tracking_uri, experiment_id, sweep_id)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _live_trials(tracking_uri: str, experiment_id: str, sweep_id: str) -> pd.DataFrame:
    return query.trials(tracking_uri, experiment_id, sweep_id)


@st.cache_data(ttl=LIVE_TTL, show_spinner="Reading learning curves ...")
def histories(tracking_uri: str, run_ids: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    return query.histories(tracking_uri, run_ids, keys)


@st.cache_data(ttl=LIVE_TTL, show_spinner="Reading the Optuna study ...")
def study(db_url: str, study_name: str) -> StudyTrials | None:
    return query.study_trials(db_url, study_name)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def run(tracking_uri: str, run_id: str) -> query.RunDetail:
    return query.run(tracking_uri, run_id)


@st.cache_data(ttl=FINISHED_TTL, show_spinner=False)
def artifact_bytes(tracking_uri: str, run_id: str, path: str) -> bytes:
    """One artifact's content (images, a checkpoint), downloaded once."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return query.artifact_file(tracking_uri, run_id, path, Path(folder)).read_bytes()


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def models(tracking_uri: str) -> pd.DataFrame:
    return query.models(tracking_uri)


def mlflow_run_url(where: Home, experiment_id: str, run_id: str) -> str | None:
    """The run in the MLflow UI: the tracking server itself, or `$TRIALFORGE_MLFLOW_UI`."""
    base = os.environ.get(MLFLOW_UI_VARIABLE)
    if not base and where.tracking_uri.startswith(("http://", "https://")):
        # Never put credentials in a link: the browser asks for them itself.
        parts = urlsplit(where.tracking_uri)
        base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if not base:
        return None
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
