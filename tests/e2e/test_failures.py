"""Typed trial failures through the CLI on real Ray, MLflow and Optuna: what each kind is
recorded as, whether it is retried, and when a sweep stops early."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from sweep_records import only_sweep, stores, trial_runs

from support import run_cli
from trialforge import query

pytestmark = pytest.mark.e2e

# Each build appends a line to BUILDS: how many times each trial's model was built (a retry
# builds it again).
NETS = '''
import torch
import torch.nn as nn

BUILDS = {builds!r}

class _Raise(nn.Module):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def forward(self, x):
        raise self.error

def _built(label):
    with open(BUILDS, "a") as f:
        f.write(label + "\\n")

def broken(*, input_shape, num_classes):
    _built("broken")
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes),
                         _Raise(ValueError("shapes do not match: a bug in the net")))

def hungry(*, input_shape, num_classes, hidden=16):
    # Wide ones run out of memory, as on a GPU too small for them.
    _built(f"hungry-{{hidden}}")
    layers = [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    if hidden > 32:
        layers.append(_Raise(torch.OutOfMemoryError("CUDA out of memory: 40 GiB")))
    return nn.Sequential(*layers)
'''


def _write(tmp_path: Path, spec: str) -> Path:
    builds = tmp_path / "builds.txt"
    (tmp_path / "user_nets.py").write_text(NETS.format(builds=str(builds)))
    (tmp_path / "spec.yaml").write_text(spec)
    return builds


def test_a_sweep_whose_first_trials_fail_alike_stops_with_that_error(
    tmp_path: Path, home: Path, ray_address: str
) -> None:
    builds = _write(tmp_path, (
        "name: broken-net\nmodel: {family: 'user_nets:broken'}\n"
        "train: {epochs: 2, max_failures: 2}\n"
        "search: {trials: 8, concurrency: 1, fail_fast: 3,\n"
        "         space: {lr: {loguniform: [0.001, 0.1]}}}\n"
    ))
    done = run_cli("sweep", "run", "spec.yaml", home=home, ray_address=ray_address, cwd=tmp_path)
    assert done.returncode == 1
    assert ("error: stopped: the first 3 trials all failed with the same error: ValueError: "
            "shapes do not match: a bug in the net") in done.stderr
    assert builds.read_text().splitlines() == ["broken"] * 3, "3 trials, none retried"

    record = only_sweep(home)
    assert record.state == "failed" and "shapes do not match" in (record.error or "")
    db_url, tracking_uri = stores(home)
    ends = query.trial_ends(db_url, record.id)
    assert [(end.state, end.failure) for end in ends] == [("failed", "code_error")] * 3
    _, children = trial_runs(home, record)
    assert len(children) == 3
    for run in children:
        assert run.info.status == "FAILED"
        assert run.data.tags["trialforge.reason"].startswith("code_error: ValueError: shapes")
        assert run.data.tags["trialforge.failure"] == "code_error"
    assert not MlflowClient(tracking_uri).search_runs(
        [record.mlflow_experiment_id], "attributes.status = 'RUNNING'")
    study = optuna.load_study(study_name=record.study_name, storage=db_url)
    assert {trial.state for trial in study.trials} == {optuna.trial.TrialState.FAIL}


def test_out_of_memory_trials_fail_once_and_the_others_go_on(
    tmp_path: Path, home: Path, ray_address: str
) -> None:
    builds = _write(tmp_path, (
        "name: hungry-net\nmodel: {family: 'user_nets:hungry'}\n"
        "train: {epochs: 2, max_failures: 2}\n"
        "search: {trials: 5, concurrency: 1, space: {hidden: {choice: [16, 24, 48, 64]}}}\n"
    ))
    done = run_cli("sweep", "run", "spec.yaml", home=home, ray_address=ray_address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = only_sweep(home)
    assert record.state == "finished"
    db_url, _ = stores(home)
    ends = {end.trial_id: end for end in query.trial_ends(db_url, record.id)}
    hungry = {trial for trial, end in ends.items() if end.failure == "oom"}
    assert hungry and len(hungry) < len(ends), "some trials ran out of memory, not all"
    _, children = trial_runs(home, record)
    for run in children:
        trial = run.data.tags["trialforge.trial_id"]
        wide = int(run.data.params["model.hidden"]) > 32
        assert (trial in hungry) == wide
        if wide:
            assert run.info.status == "FAILED"
            assert run.data.tags["trialforge.reason"].startswith("oom: OutOfMemoryError")
            assert run.data.tags["trialforge.failure"] == "oom"
        else:
            assert "trialforge.failure" not in run.data.tags
    wide_builds = [b for b in builds.read_text().splitlines() if int(b.split("-")[1]) > 32]
    assert len(wide_builds) == len(hungry), "built once each: none was retried"
    study = optuna.load_study(study_name=record.study_name, storage=db_url)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert {t.user_attrs["trialforge.trial_id"] for t in failed} == hungry, "TPE avoids them"
    shown = run_cli("sweep", "show", record.id, home=home)
    assert "Failed trials" in shown.stdout and "oom" in shown.stdout


def test_a_gpu_sweep_where_ray_has_no_gpu_is_one_clear_error_at_once(
    ray_address: str, home: Path
) -> None:
    """It would otherwise wait for a GPU forever; here Ray has 2 CPUs and no GPU."""
    done = run_cli("sweep", "run", "jobs/cnn_digits.yaml", "train.use_gpu=true",
                   "train.gpu_fraction=0.25", home=home, ray_address=ray_address, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: train.use_gpu: a trial needs 0.25 GPU, but {ray_address} sees 0 GPU and 2 CPU: "
        "set train.use_gpu=false, or run where Ray has GPUs (RAY_ADDRESS, trialforge job "
        "submit)")
    assert not home.exists(), "nothing written for a sweep that cannot run"
