"""What every finished sweep must leave behind, checked with each store's own client."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from support import RecordingSession
from trialforge import parse_spec, query
from trialforge.catalog import SweepRecord
from trialforge.registry import load_model
from trialforge.spec import SweepSpec
from trialforge.streaming import StreamedData, open_stream
from trialforge.train.batches import StreamBatches, TensorBatches
from trialforge.train.evaluation import evaluate
from trialforge.train.loop import trial_data, trial_layout
from trialforge.train.placement import Placement

TRIAL_STATES = {"completed", "stopped_early", "diverged", "failed"}
# Besides the objective, what every epoch of each task logs.
EPOCH_KEYS = {
    "classification": ("train_loss", "val_loss", "val_f1", "params", "epoch_seconds"),
    "regression": ("train_loss", "val_loss", "val_mae", "epoch_seconds"),
    "language_model": ("train_loss", "val_loss", "epoch_seconds"),
    "generation": ("d_loss", "g_loss", "epoch_seconds"),
}


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
    """Catalog, MLflow (parent + nested children + histories), Optuna and the registry agree,
    each read with its own client (`assert_stores_agree`)."""
    _, tracking_uri = stores(home)
    client = MlflowClient(tracking_uri)
    record = only_sweep(home)
    spec = parse_spec(yaml.safe_load(record.spec_yaml))
    metric = spec.search.objective
    better = max if spec.search.direction == "max" else min

    assert record.state == "finished", record.error
    assert record.best_value is not None and record.finished_at is not None

    parent, children = trial_runs(home, record)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics[f"best_{metric}"] == record.best_value
    assert "spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert len(children) == trials
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
        for key in EPOCH_KEYS[spec.task or "classification"]:
            assert len(client.get_metric_history(child.info.run_id, key)) == len(steps), key
        assert "seed" in child.data.params
        if state in ("completed", "stopped_early"):
            artifacts = [a.path for a in client.list_artifacts(child.info.run_id,
                                                                "best_checkpoint")]
            assert artifacts == ["best_checkpoint/checkpoint.pt"], "every trial keeps its best"
        finite = [m for m in history if m.value == m.value]
        if finite:  # its score: the value of its best epoch, the last to reach it
            best = better(finite, key=lambda m: m.value)
            assert child.data.metrics[f"best_{metric}"] == best.value
            assert child.data.tags["trialforge.best_epoch"] == str(
                max(m.step for m in finite if m.value == best.value))
    assert_stores_agree(home, record, spec, children)

    if not spec.register.enabled:  # no champion to score
        return record
    model = load_model(f"models:/{spec.model_name}@{spec.register.alias}", tracking_uri)
    session, cpu = RecordingSession(), Placement(torch.device("cpu"))
    data = open_stream(spec.data, trial_layout(spec)) if spec.data.stream else trial_data(spec)
    with torch.no_grad():
        if spec.task == "generation":
            noise = torch.randn(4, spec.model.latent_dim)  # type: ignore[union-attr]
            assert model(noise).shape == (4, *data.input_shape)
        else:
            batches = (StreamBatches(data, spec, session, cpu) if isinstance(data, StreamedData)
                       else TensorBatches(data, spec, session, cpu))
            metrics, _ = evaluate(model, batches.val(), data.task, data.num_classes, session)
            assert metrics[metric] == pytest.approx(record.best_value, rel=1e-4), \
                "the registered model is the best"
    return record


def assert_stores_agree(
    home: Path, record: SweepRecord, spec: SweepSpec, children: list[Run]
) -> None:
    """One story in four stores: Optuna's study (states, values, intermediate values), the
    catalog's trials, the MLflow runs and the registered version name the same scores and
    the same champion."""
    db_url, tracking_uri = stores(home)
    metric = spec.search.objective
    runs = {run.data.tags["trialforge.trial_id"]: run for run in children}
    ends = {end.trial_id: end for end in query.trial_ends(db_url, record.id)}
    assert set(ends) == set(runs)
    for trial_id, run in runs.items():
        end = ends[trial_id]
        assert end.run_id == run.info.run_id
        assert end.state == run.data.tags["trialforge.state"]
        assert end.value == run.data.metrics.get(f"best_{metric}"), "the catalog's score"

    study = optuna.load_study(study_name=record.study_name, storage=db_url)
    assert len(study.trials) == len(runs)
    expected = {"completed": TrialState.COMPLETE, "stopped_early": TrialState.PRUNED}
    for trial in study.trials:
        run = runs[trial.user_attrs["trialforge.trial_id"]]
        state = run.data.tags["trialforge.state"]
        assert trial.state == expected.get(state, TrialState.FAIL), (trial.number, state)
        if spec.search.multi_objective:
            continue
        history = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, metric)
        assert trial.intermediate_values == {m.step: m.value for m in history
                                             if m.value == m.value}, "every epoch, once"
        if trial.state == TrialState.COMPLETE:
            assert trial.value == run.data.metrics[f"best_{metric}"], "Optuna's score"

    champion = MlflowClient(tracking_uri).get_run(record.best_run_id or "")
    assert champion.data.metrics[f"best_{metric}"] == record.best_value
    if spec.search.space and not spec.search.multi_objective:
        assert study.best_value == record.best_value
        assert study.best_trial.user_attrs["trialforge.trial_id"] == \
            champion.data.tags["trialforge.trial_id"], "Optuna's best trial is the champion"
    if spec.register.enabled:
        version = MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias(
            spec.model_name, spec.register.alias)
        assert version.tags["trialforge.trial_run_id"] == record.best_run_id
        assert version.tags["trialforge.value"] == f"{record.best_value:.6g}"
        assert version.tags["trialforge.epoch"] == champion.data.tags["trialforge.best_epoch"]
