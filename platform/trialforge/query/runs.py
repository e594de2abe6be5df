"""Trial runs in MLflow: the runs of a sweep, their curves, and one run in detail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from trialforge.errors import NotFoundError
from trialforge.query.history import metric_histories
from trialforge.tracking.tags import (
    BEST_CHECKPOINT_DIR,
    TAG_BEST_EPOCH,
    TAG_CONFIG,
    TAG_EXPLOIT,
    TAG_FEASIBLE,
    TAG_KIND,
    TAG_ORIGIN,
    TAG_REASON,
    TAG_SEED,
    TAG_STAGE,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
)

# Lineage tags a trial carries (a transfer trial's backbone), shown next to its params.
LINEAGE_PREFIX = "trialforge.backbone"
_PAGE = 1000  # MLflow's search_runs stops at 1,000 a page: page on with its token


def trials(
    tracking_uri: str, experiment_id: str, sweep_id: str, page_size: int = _PAGE
) -> pd.DataFrame:
    """The trial runs of a sweep: ids, state, times, `params.*` (numbers where they are
    numbers) and the last value of each metric as `metrics.*`. Pages through them all."""
    client = MlflowClient(tracking_uri)
    rows = []
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'trial'",
            max_results=page_size,
            page_token=page_token,
        )
        for run in page:
            tags = run.data.tags
            row: dict[str, object] = {
                "sweep_id": sweep_id, "run_id": run.info.run_id, "name": run.info.run_name,
                "trial_id": tags.get(TAG_TRIAL), "status": run.info.status,
                "state": tags.get(TAG_STATE), "reason": tags.get(TAG_REASON),
                "start": run.info.start_time, "end": run.info.end_time,
                "best_epoch": _int(tags.get(TAG_BEST_EPOCH)),
                "backbone": tags.get(LINEAGE_PREFIX),
                "stage": tags.get(TAG_STAGE), "config_id": tags.get(TAG_CONFIG),
                "seed": _int(tags.get(TAG_SEED)),
                # search.warm_start: the earlier sweep/trial it re-evaluated; constraints:
                # "true" or "false: why"; pbt/pb2: how many exploits it took.
                "origin": tags.get(TAG_ORIGIN), "feasible": tags.get(TAG_FEASIBLE),
                "exploits": sum(1 for key in tags if key.startswith(f"{TAG_EXPLOIT}.")),
            }
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        page_token = page.token
        if not page_token:
            break
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    frame["seconds"] = (frame["end"] - frame["start"]).dt.total_seconds()
    for column in (c for c in frame.columns if c.startswith("params.")):
        frame[column] = _typed(frame[column])
    return frame.sort_values("start", kind="stable").reset_index(drop=True)


def histories(
    tracking_uri: str, run_ids: Sequence[str], keys: Iterable[str]
) -> pd.DataFrame:
    """Per-epoch values of `keys` in `run_ids`: columns run_id, key, step (the epoch), value."""
    return metric_histories(tracking_uri, run_ids, keys)


@dataclass
class Artifact:
    path: str
    size: int | None


@dataclass
class RunDetail:
    """One trial run: what the Run page shows."""

    run_id: str
    name: str
    experiment_id: str
    sweep_id: str | None
    status: str
    state: str | None
    reason: str | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    best_epoch: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    lineage: dict[str, str]
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def images(self) -> list[str]:
        """Images at the artifact root: the confusion matrix, GAN samples."""
        return [a.path for a in self.artifacts if a.path.endswith(".png")]

    @property
    def checkpoint(self) -> list[Artifact]:
        return [a for a in self.artifacts if a.path.startswith(f"{BEST_CHECKPOINT_DIR}/")]


def run(tracking_uri: str, run_id: str) -> RunDetail:
    """One run with its artifacts listed (raises `NotFoundError` for an unknown id)."""
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    try:
        found = client.get_run(run_id)
    except MlflowException:
        raise NotFoundError(f"no run {run_id!r} in {tracking_uri}") from None
    tags = found.data.tags
    artifacts = [Artifact(a.path, a.file_size) for a in client.list_artifacts(run_id)
                 if not a.is_dir]
    artifacts += [Artifact(a.path, a.file_size)
                  for a in client.list_artifacts(run_id, BEST_CHECKPOINT_DIR) if not a.is_dir]
    return RunDetail(
        run_id=run_id, name=found.info.run_name, experiment_id=found.info.experiment_id,
        sweep_id=tags.get(TAG_SWEEP), status=found.info.status, state=tags.get(TAG_STATE),
        reason=tags.get(TAG_REASON), start=_time(found.info.start_time),
        end=_time(found.info.end_time), best_epoch=_int(tags.get(TAG_BEST_EPOCH)),
        params=dict(found.data.params), metrics=dict(found.data.metrics),
        lineage={k: v for k, v in tags.items() if k.startswith(LINEAGE_PREFIX)},
        artifacts=artifacts,
    )


def artifact_file(tracking_uri: str, run_id: str, path: str, folder: Path) -> Path:
    """A local copy of one artifact of a run, downloaded into `folder`."""
    client = MlflowClient(tracking_uri)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(folder)))


def _typed(column: pd.Series) -> pd.Series:
    """MLflow keeps params as text: numbers become numbers, "None" becomes missing."""
    column = column.where(column != "None")
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().sum() == column.notna().sum():
        return numbers
    return column


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _time(ms: int | None) -> pd.Timestamp | None:
    return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else None
