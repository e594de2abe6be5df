"""Per-epoch metric histories of many runs at once, for curves across a whole sweep."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

HISTORY_COLUMNS = ["run_id", "key", "step", "value", "timestamp"]
# SQL stores answer one query per chunk of runs; a server, one request per run and metric.
_CHUNK = 500
_THREADS = 8


def metric_histories(
    tracking_uri: str, run_ids: Sequence[str], keys: Iterable[str]
) -> pd.DataFrame:
    """Every logged value of `keys` in `run_ids`: one row per (run, metric, step)."""
    client = MlflowClient(tracking_uri)
    store: Any = client._tracking_client.store
    rows: list[tuple[str, str, int, float, int]] = []
    keys = list(keys)
    if hasattr(store, "get_metric_history_bulk"):  # the SQLAlchemy store: one query per chunk
        for key in keys:
            for start in range(0, len(run_ids), _CHUNK):
                chunk = list(run_ids[start : start + _CHUNK])
                for m in store.get_metric_history_bulk(chunk, key, max_results=10**9):
                    rows.append((m.run_id, key, m.step, m.value, m.timestamp))
    else:  # an HTTP server: no bulk call in its public API, so a few requests at a time
        pairs = [(run_id, key) for run_id in run_ids for key in keys]

        def fetch(pair: tuple[str, str]) -> list[tuple[str, str, int, float, int]]:
            run_id, key = pair
            return [(run_id, key, m.step, m.value, m.timestamp)
                    for m in client.get_metric_history(run_id, key)]

        with ThreadPoolExecutor(_THREADS) as pool:
            for part in pool.map(fetch, pairs):
                rows.extend(part)
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    # A resumed trial may log an epoch again; the latest write of a step wins.
    frame = frame.sort_values(["run_id", "key", "step", "timestamp"])
    return frame.drop_duplicates(["run_id", "key", "step"], keep="last").reset_index(drop=True)
