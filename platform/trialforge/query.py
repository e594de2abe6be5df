"""Read-side functions the CLI and the dashboard share: pure, each returns a DataFrame."""

from __future__ import annotations

import pandas as pd

from trialforge.catalog import Catalog, SweepRecord, catalog_exists
from trialforge.errors import NotFoundError

SWEEP_COLUMNS = [
    "id", "name", "family", "state", "created_at", "finished_at", "metric", "mode",
    "best_value", "trials_total", "trials_completed", "trials_stopped", "trials_failed",
    "epochs_trained", "model_version", "error",
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


def trials(tracking_uri: str, experiment_id: str, sweep_id: str) -> pd.DataFrame:
    """The trial runs of a sweep with their params, last metrics and state."""
    from mlflow.tracking import MlflowClient

    from trialforge.tracking.mlflow import TAG_KIND, TAG_STATE, TAG_SWEEP

    client = MlflowClient(tracking_uri)
    rows = []
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'trial'",
            max_results=1000,
            page_token=page_token,
        )
        for run in page:
            row = {"run_id": run.info.run_id, "name": run.info.run_name,
                   "status": run.info.status, "state": run.data.tags.get(TAG_STATE)}
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        page_token = page.token
        if not page_token:
            break
    return pd.DataFrame(rows)


def models(tracking_uri: str) -> pd.DataFrame:
    """Every registered model version with its aliases and the sweep behind it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    rows = []
    for model in client.search_registered_models():
        aliases_by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases_by_version.setdefault(str(version), []).append(alias)
        for version in client.search_model_versions(f"name = '{model.name}'"):
            rows.append({
                "name": model.name,
                "version": int(version.version),
                "aliases": ", ".join(sorted(aliases_by_version.get(str(version.version), []))),
                "sweep_id": version.tags.get("trialforge.sweep_id"),
                "metric": version.tags.get("trialforge.metric"),
                "value": _float(version.tags.get("trialforge.value")),
                "created": pd.to_datetime(version.creation_timestamp, unit="ms"),
            })
    columns = ["name", "version", "aliases", "sweep_id", "metric", "value", "created"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["name", "version"], ascending=[True, False])


def _row(record: SweepRecord) -> dict[str, object]:
    return {column: getattr(record, column) for column in SWEEP_COLUMNS}


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
