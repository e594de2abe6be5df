"""Registered models: every version, its aliases, and the sweep and run behind it."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

MODEL_COLUMNS = [
    "name", "version", "aliases", "sweep_id", "run_id", "metric", "value", "created",
]


def models(tracking_uri: str) -> pd.DataFrame:
    """Every registered model version with its aliases and the sweep behind it."""
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
                "run_id": version.tags.get("trialforge.trial_run_id") or version.run_id,
                "metric": version.tags.get("trialforge.metric"),
                "value": _float(version.tags.get("trialforge.value")),
                "created": pd.to_datetime(version.creation_timestamp, unit="ms", utc=True),
            })
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    return frame.sort_values(["name", "version"], ascending=[True, False], ignore_index=True)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
