"""Two `trialforge sweep run` processes at once on one home and one Ray instance: both
finish, neither waits out a locked database, and each sweep's records are its own."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from support import REPO, STORE_VARIABLES, TRIALFORGE
from trialforge import query

pytestmark = pytest.mark.e2e
NAMES = ("concurrent-a", "concurrent-b")


def test_two_sweeps_at_once_keep_their_records_apart(ray_address: str, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    env.update(TRIALFORGE_HOME=str(home), RAY_ADDRESS=ray_address)
    started = time.monotonic()
    # The home does not exist yet: both processes create its stores at the same moment.
    processes = [
        subprocess.Popen(
            [str(TRIALFORGE), "sweep", "run", "jobs/mlp_digits.yaml", f"name={name}",
             "search.trials=2", "train.epochs=2"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in NAMES
    ]
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=600)
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    print(f"two concurrent sweeps in {time.monotonic() - started:.1f} s")
    for name, (code, stdout, stderr) in zip(NAMES, outputs, strict=True):
        assert code == 0, f"{name}:\n{stdout}\n{stderr}"
        assert "database is locked" not in stderr, f"{name}:\n{stderr}"
        assert "Traceback" not in stderr, f"{name}:\n{stderr}"

    db_url, tracking_uri = f"sqlite:///{home}/trialforge.db", f"sqlite:///{home}/mlflow.db"
    frame = query.sweeps(db_url)
    assert sorted(frame.name) == sorted(NAMES)
    records = [query.sweep(db_url, sweep_id) for sweep_id in frame.id]
    client = MlflowClient(tracking_uri)
    for record in records:
        assert record.state == "finished", record.error
        assert record.mlflow_parent_run_id and record.mlflow_experiment_id
        trials = client.search_runs(
            [record.mlflow_experiment_id],
            f"tags.`trialforge.sweep_id` = '{record.id}' and tags.`trialforge.kind` = 'trial'",
        )
        assert len(trials) == 2, [run.info.run_name for run in trials]
        for run in trials:
            assert run.data.tags["mlflow.parentRunId"] == record.mlflow_parent_run_id
            assert run.info.status == "FINISHED", run.info.status
        parent = client.get_run(record.mlflow_parent_run_id)
        assert parent.data.tags["trialforge.sweep_id"] == record.id
        assert parent.info.status == "FINISHED"

        assert record.study_name == f"trialforge-{record.id}"
        study = optuna.load_study(study_name=record.study_name, storage=db_url)
        states = [trial.state for trial in study.trials]
        assert states == [optuna.trial.TrialState.COMPLETE] * 2, states
    # Both registered their best model (the spec's digits-mlp): two versions, one each.
    versions = sorted(str(record.model_version) for record in records)
    assert versions == ["digits-mlp/1", "digits-mlp/2"], versions
    # Every trial run of the home belongs to exactly one of the two sweeps.
    every_trial = client.search_runs(
        list({str(record.mlflow_experiment_id) for record in records}),
        "tags.`trialforge.kind` = 'trial'",
    )
    assert len(every_trial) == 4
