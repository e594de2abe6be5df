"""What every finished sweep must leave behind, checked with each store's own client."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from trialforge import parse_spec, query
from trialforge.catalog import SweepRecord
from trialforge.data import load_dataset
from trialforge.models import input_layout
from trialforge.registry import load_model

TRIAL_STATES = {"completed", "stopped_early", "diverged", "failed"}


def stores(home: Path) -> tuple[str, str]:
    return f"sqlite:///{home}/trialforge.db", f"sqlite:///{home}/mlflow.db"


def only_sweep(home: Path) -> SweepRecord:
    db_url, _ = stores(home)
    frame = query.sweeps(db_url)
    assert len(frame) == 1, frame
    return query.sweep(db_url, frame.id[0])


def trial_runs(home: Path, record: SweepRecord) -> tuple[Run, list[Run]]:
    _, tracking_uri = stores(home)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs(
        [record.mlflow_experiment_id], f"tags.`trialforge.sweep_id` = '{record.id}'"
    )
    parents = [r for r in runs if r.info.run_id == record.mlflow_parent_run_id]
    assert len(parents) == 1
    return parents[0], [r for r in runs if r.info.run_id != record.mlflow_parent_run_id]


def assert_finished_sweep(home: Path, *, trials: int, epochs: int) -> SweepRecord:
    """Catalog, MLflow (parent + nested children + histories), Optuna and the registry agree."""
    db_url, tracking_uri = stores(home)
    client = MlflowClient(tracking_uri)
    record = only_sweep(home)
    spec = parse_spec(yaml.safe_load(record.spec_yaml))
    metric = spec.search.metric

    assert record.state == "finished", record.error
    assert record.best_value is not None and record.finished_at is not None

    parent, children = trial_runs(home, record)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics[f"best_{metric}"] == record.best_value
    assert "spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert len(children) == trials
    best_seen = 0.0
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status in ("FINISHED", "FAILED"), child.info.status
        state = child.data.tags["trialforge.state"]
        assert state in TRIAL_STATES
        history = client.get_metric_history(child.info.run_id, metric)
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, len(steps) + 1)), "one value per epoch, once"
        stamps = [m.timestamp for m in sorted(history, key=lambda m: m.step)]
        assert stamps == sorted(stamps), "each epoch stamped when it ended"
        assert 1 <= len(steps) <= epochs
        if state == "completed":
            assert len(steps) == epochs
        for key in ("train_loss", "val_loss", "epoch_seconds"):
            assert len(client.get_metric_history(child.info.run_id, key)) == len(steps)
        assert "train.lr" in child.data.params
        if state in ("completed", "stopped_early"):
            artifacts = [a.path for a in client.list_artifacts(child.info.run_id,
                                                                "best_checkpoint")]
            assert artifacts == ["best_checkpoint/checkpoint.pt"], "every trial keeps its best"
        best_seen = max([best_seen, *(m.value for m in history if m.value == m.value)])
    assert best_seen == record.best_value

    study = optuna.load_study(study_name=record.study_name, storage=db_url)
    assert len(study.trials) == trials
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]

    model = load_model(f"models:/{spec.model_name}@{spec.register.alias}", tracking_uri)
    data = load_dataset(spec.data.dataset, val_fraction=spec.data.val_fraction, seed=spec.seed,
                        layout=input_layout(spec.model.family))
    with torch.no_grad():
        correct = (model(data.x_val).argmax(dim=1) == data.y_val).sum().item()
    assert correct == round(record.best_value * len(data.y_val)), "the registered model is the best"
    return record
