"""TrialRun against a real MLflow sqlite store: one run per trial, each epoch once."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from trialforge.tracking import SweepTracker, TrialRun


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
