"""Sweeps as the catalog records them."""

from __future__ import annotations

import pandas as pd

from trialforge.catalog import Catalog, SweepRecord, TrialRecord, catalog_exists
from trialforge.errors import NotFoundError

SWEEP_COLUMNS = [
    "id", "name", "family", "state", "created_at", "finished_at", "metric", "mode",
    "best_value", "test_value", "trials_total", "trials_completed", "trials_stopped",
    "trials_failed", "epochs_trained", "model_version", "error", "study_name",
    "mlflow_experiment_id", "mlflow_parent_run_id", "confirmed", "stop_reason", "warm_start",
]


def sweeps(db_url: str, limit: int | None = None) -> pd.DataFrame:
    """Every sweep in the catalog, newest first."""
    rows = []
    if catalog_exists(db_url):
        catalog = Catalog(db_url)
        try:
            rows = [_row(record) for record in catalog.list_sweeps(limit)]
        finally:
            catalog.close()
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    for column in ("created_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["seconds"] = (frame["finished_at"] - frame["created_at"]).dt.total_seconds()
    return frame


def sweep(db_url: str, sweep_id: str) -> SweepRecord:
    """One sweep by id or unique prefix (raises `NotFoundError`)."""
    if not catalog_exists(db_url):
        raise NotFoundError(f"no sweep {sweep_id!r}: no sweep has run with catalog {db_url}")
    catalog = Catalog(db_url)
    try:
        return catalog.get_sweep(sweep_id)
    finally:
        catalog.close()


def trial_ends(db_url: str, sweep_id: str) -> list[TrialRecord]:
    """How each trial of a sweep ended (state, kind of failure, why), in the order they did."""
    if not catalog_exists(db_url):
        return []
    catalog = Catalog(db_url)
    try:
        return list(catalog.list_trials(sweep_id))
    finally:
        catalog.close()


def _row(record: SweepRecord) -> dict[str, object]:
    return {column: getattr(record, column) for column in SWEEP_COLUMNS}


def filter_sweeps(
    frame: pd.DataFrame, text: str = "", states: list[str] | None = None,
    families: list[str] | None = None,
) -> pd.DataFrame:
    """The sweeps whose name or id contains `text`, in one of `states` and `families`
    (an empty filter keeps all)."""
    keep = pd.Series(True, index=frame.index)
    if text:
        keep &= frame["name"].str.contains(text, case=False, regex=False) | frame[
            "id"
        ].str.startswith(text)
    if states:
        keep &= frame["state"].isin(states)
    if families:
        keep &= frame["family"].isin(families)
    return frame[keep]
