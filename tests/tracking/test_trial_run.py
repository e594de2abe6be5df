"""TrialRun against a real MLflow sqlite store: one run per trial, each epoch once, even when
MLflow is away as the trial starts."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from trialforge.tracking import SweepTracker, TrialRun
from trialforge.tracking import trial_run as tracking_trial_run
from trialforge.tracking.outbox import Epochs


def test_a_restarted_trial_reuses_its_run_and_never_logs_an_epoch_twice(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    target = SweepTracker(uri).start("exp", "sweep1", "name: exp\n", artifact_root=tmp_path)
    first = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1})
    first.log_epochs([(1, {"epoch_seconds": 1.0}, 1000), (2, {"epoch_seconds": 0.5}, 2000)])
    again = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1})  # after a restart
    assert again.run_id == first.run_id
    assert again.logged_epochs == 2
    again.log_epochs([(2, {"epoch_seconds": 0.5}, 2000), (3, {"epoch_seconds": 0.25}, 3000)])
    client = MlflowClient(uri)
    history = client.get_metric_history(first.run_id, "epoch_seconds")
    assert sorted((m.step, m.value, m.timestamp) for m in history) == [
        (1, 1.0, 1000), (2, 0.5, 2000), (3, 0.25, 3000)]
    assert client.get_run(first.run_id).data.params == {"train.lr": "0.1"}
    other = TrialRun.open(target, "trial_b", "trial_b", {})
    assert other.run_id != first.run_id
    assert TrialRun.attach(uri, first.run_id).logged_epochs == 3


def test_a_trial_that_starts_while_mlflow_is_away_gets_its_run_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    target = SweepTracker(uri).start("exp", "sweep1", "name: exp\n", artifact_root=tmp_path)
    monkeypatch.setattr(tracking_trial_run, "reachable", lambda _: False)
    run = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1},
                        tags={"trialforge.backbone": "v1"})
    assert run.run_id is None, "training starts without waiting for MLflow"
    run = pickle.loads(pickle.dumps(run))  # as a TorchTrainer's rank 0 would get it
    monkeypatch.undo()
    run.send(Epochs(((1, {"epoch_seconds": 1.0}, 1000), (2, {"epoch_seconds": 0.5}, 2000))))
    assert run.run_id is not None
    client = MlflowClient(uri)
    created = client.get_run(run.run_id)
    assert created.data.params == {"train.lr": "0.1"}
    assert created.data.tags["trialforge.backbone"] == "v1"
    assert created.data.tags["mlflow.parentRunId"] == target.parent_run_id
    again = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1})  # Ray restarts it
    assert (again.run_id, again.logged_epochs) == (run.run_id, 2)


def test_the_driver_creates_a_run_its_trial_never_could_from_the_checkpoints_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    target = SweepTracker(uri).start("exp", "sweep1", "name: exp\n", artifact_root=tmp_path)
    monkeypatch.setattr(tracking_trial_run, "reachable", lambda _: False)
    trial = TrialRun.open(target, "trial_a", "trial_a", {"train.lr": 0.1}, tags={"k": "v"})
    recipe = trial.pending_recipe()  # what its checkpoints carry; then its process dies
    monkeypatch.undo()
    assert recipe is not None
    run = TrialRun.from_recipe(target, recipe)
    run.log_epochs([(1, {"epoch_seconds": 1.0}, 1000)])
    created = MlflowClient(uri).get_run(run.run_id or "")
    assert created.data.params == {"train.lr": "0.1"} and created.data.tags["k"] == "v"
    assert created.data.tags["trialforge.trial_id"] == "trial_a"
    assert run.pending_recipe() is None
