"""Sweeps through the CLI on real Ray, MLflow (sqlite) and SQLAlchemy, end to end."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from sweep_records import assert_finished_sweep, only_sweep, stores, trial_runs

from support import run_cli
from trialforge import query
from trialforge.cli.common import short
from trialforge.home import Home

pytestmark = pytest.mark.e2e


def test_a_finished_asha_sweep_tells_one_story_in_every_store(tiny_sweep: Home) -> None:
    """The session's CNN sweep (4 trials, ASHA), read with MLflow's, Optuna's, the catalog's
    and the registry's own clients (`assert_stores_agree`)."""
    record = assert_finished_sweep(tiny_sweep.root, trials=4, epochs=3)
    study = optuna.load_study(study_name=record.study_name, storage=tiny_sweep.db_url)
    states = [trial.state for trial in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states, states
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert all(t.intermediate_values for t in pruned), "a stopped trial's epochs reach Optuna"
    shown = run_cli("sweep", "show", record.id, home=tiny_sweep.root)
    assert shown.returncode == 0, shown.stderr
    assert short(record.best_value) in shown.stdout and "stopped_early" in shown.stdout
    assert f"test {record.metric} (champion, scored once): {short(record.test_value)}" in \
        " ".join(shown.stdout.split()), "the test split's score"
    assert "the best val_accuracy is one trial's, of a single seed" in " ".join(
        shown.stdout.split()), "no confirm stage: said so"


@pytest.mark.parametrize("job", ["mlp_digits"])
def test_a_small_sweep_of_each_job(job: str, home: Path, ray_address: str) -> None:
    done = run_cli("sweep", "run", f"jobs/{job}.yaml", "search.trials=4", "train.epochs=2",
                   home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=4, epochs=2)
    assert f"sweep {record.id} finished" in done.stdout
    assert "trials 4/4 done" in done.stderr, "progress is shown"

    listing = run_cli("sweep", "list", home=home)
    assert record.id in listing.stdout and "finished" in listing.stdout
    shown = run_cli("sweep", "show", record.id[:5], home=home)
    assert shown.returncode == 0, shown.stderr
    assert record.mlflow_parent_run_id in shown.stdout
    assert shown.stdout.count("trial_") == 4
    models = run_cli("model", "list", home=home)
    assert f"digits-{job.split('_')[0]}" in models.stdout and "champion" in models.stdout


def test_torchtrainer_path_with_two_ddp_workers(home: Path, ray_address: str) -> None:
    done = run_cli("sweep", "run", "jobs/cnn_digits.yaml", "train.workers=2",
                   "search.trials=1", "train.epochs=2", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    assert_finished_sweep(home, trials=1, epochs=2)


def test_diverging_trials_are_recorded_and_the_sweep_goes_on(
    home: Path, ray_address: str
) -> None:
    done = run_cli(
        "sweep", "run", "jobs/mlp_digits.yaml", "search.trials=6", "train.epochs=2",
        "train.optimizer=sgd", "search.space={lr: {choice: [0.05, 1.0e8]}}",
        home=home, ray_address=ray_address,
    )
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=6, epochs=2)
    _, children = trial_runs(home, record)
    diverged = [r for r in children if r.data.tags["trialforge.state"] == "diverged"]
    healthy = [r for r in children if r.data.tags["trialforge.state"] == "completed"]
    assert diverged and healthy
    for run in diverged:
        assert run.info.status == "FAILED"
        assert "NaN or infinite at epoch 1" in run.data.tags["trialforge.reason"]
        assert run.data.tags["trialforge.failure"] == "diverged"
        assert run.data.params["train.lr"] == "100000000.0"
    assert record.best_value > 0.8
    # Optuna has them FAIL, so TPE leaves their region; the catalog names the failure.
    db_url, _ = stores(home)
    study = optuna.load_study(study_name=record.study_name, storage=db_url)
    states = {t.user_attrs["trialforge.trial_id"]: t.state for t in study.trials}
    for run in diverged:
        assert states[run.data.tags["trialforge.trial_id"]] == optuna.trial.TrialState.FAIL
    ends = query.trial_ends(db_url, record.id)
    assert {end.failure for end in ends if end.state == "diverged"} == {"diverged"}
    assert len([end for end in ends if end.state == "diverged"]) == len(diverged)


USER_NETS = '''
import torch.nn as nn

def tiny(*, input_shape, num_classes, hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))

class _Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom: this layer is broken")

def broken(*, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes), _Broken())
'''


def test_a_users_own_builder_runs_on_ray_workers(
    tmp_path: Path, home: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user_nets.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))  # to load the registered model here
    (tmp_path / "spec.yaml").write_text(
        "name: own-net\nmodel: {family: 'user_nets:tiny'}\n"
        "search: {trials: 2, space: {hidden: {int: [8, 32]}}}\n"
    )
    done = run_cli("sweep", "run", "spec.yaml", "train.epochs=1", home=home,
                   ray_address=ray_address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=2, epochs=1)
    _, children = trial_runs(home, record)
    assert {r.data.params["model.family"] for r in children} == {"user_nets:tiny"}


def test_trials_that_crash_fail_the_sweep_with_their_error(
    tmp_path: Path, home: Path, ray_address: str
) -> None:
    (tmp_path / "user_nets.py").write_text(USER_NETS)
    (tmp_path / "spec.yaml").write_text(
        "name: broken-net\nmodel: {family: 'user_nets:broken'}\n"
        "train: {epochs: 1, max_failures: 0}\n"
        "search: {trials: 2, space: {lr: {loguniform: [0.001, 0.1]}}}\n"
    )
    done = run_cli("sweep", "run", "spec.yaml", home=home, ray_address=ray_address, cwd=tmp_path)
    assert done.returncode == 1
    assert "error: no trial reported a finite val_accuracy (2 failed" in done.stderr
    assert "boom: this layer is broken" in done.stderr
    record = only_sweep(home)
    assert record.state == "failed" and "boom" in (record.error or "")
    parent, children = trial_runs(home, record)
    assert parent.info.status == "FAILED"
    assert len(children) == 2
    for run in children:
        assert run.info.status == "FAILED"
        assert run.data.tags["trialforge.state"] == "failed"
        assert run.data.tags["trialforge.reason"].startswith(
            "code_error: RuntimeError: boom: this layer is broken")
        assert run.data.tags["trialforge.failure"] == "code_error"
    _, tracking_uri = stores(home)
    assert not MlflowClient(tracking_uri).search_runs(
        [record.mlflow_experiment_id], "attributes.status = 'RUNNING'"
    )


CRASH_ONCE = '''
import os
import torch.nn as nn

MARKER = {marker!r}

class _DieOnce(nn.Module):
    calls = 0

    def forward(self, x):
        _DieOnce.calls += 1
        if _DieOnce.calls == 30 and not os.path.exists(MARKER):  # mid-way through epoch 2
            open(MARKER, "w").close()
            os._exit(1)  # the trial's process dies, as when its node is lost
        return x

def crash_once(*, input_shape, num_classes):
    return nn.Sequential(_DieOnce(), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, num_classes))
'''


def test_a_trial_whose_process_dies_resumes_from_its_checkpoint(
    tmp_path: Path, home: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "crashed"
    (tmp_path / "crashy_nets.py").write_text(CRASH_ONCE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "spec.yaml").write_text(
        "name: crash-once\nmodel: {family: 'crashy_nets:crash_once'}\n"
        "train: {epochs: 3, max_failures: 1}\n"
        "search: {trials: 1, space: {lr: {loguniform: [0.001, 0.01]}}}\n"
    )
    done = run_cli("sweep", "run", "spec.yaml", home=home, ray_address=ray_address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert marker.exists(), "the trial's process died once"
    record = assert_finished_sweep(home, trials=1, epochs=3)
    _, children = trial_runs(home, record)
    (run,) = children
    assert run.data.tags["trialforge.state"] == "completed", run.data.tags.get("trialforge.reason")
    _, tracking_uri = stores(home)
    history = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "train_loss")
    # Epoch 1 was checkpointed before the crash and is not trained again; 2 and 3 follow.
    assert [m.step for m in history] == [1, 2, 3]


def test_ten_trials_in_one_reused_actor_report_its_memory_and_leave_little_behind(
    home: Path, ray_address: str
) -> None:
    """One trial at a time: Tune reuses one actor for all ten, and each epoch reports the
    actor's resident memory (`memory_mb`). Measured on a CPU: +1-2 MiB a trial after the
    second (not Python garbage: a gc.collect between trials changes nothing)."""
    done = run_cli("sweep", "run", "jobs/mlp_digits.yaml", "search.trials=10", "train.epochs=1",
                   "search.concurrency=1", "search.scheduler.type=fifo", "register.enabled=false",
                   home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    _, runs = trial_runs(home, only_sweep(home))
    memory = [run.data.metrics["memory_mb"]
              for run in sorted(runs, key=lambda run: run.info.start_time)]
    assert len(memory) == 10 and min(memory) > 50, memory
    # The first trial of an actor imports and warms up; a trial that kept its model, data or
    # optimizer state behind would add more than this over eight.
    assert max(memory[2:]) - memory[1] < 30, memory
