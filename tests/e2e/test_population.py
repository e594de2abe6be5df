"""pbt and pb2 from a spec: trials exploit each other's checkpoints, each exploit is on the
trial's MLflow run, and the registered champion is rebuilt with the knobs of its best epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from support import home_at, run_cli
from trialforge import load_model, parse_spec, query, resolve_home, run_sweep

pytestmark = pytest.mark.e2e


def _exploits(tracking_uri: str, experiment_id: str) -> dict[str, list[dict[str, object]]]:
    runs = MlflowClient(tracking_uri).search_runs(
        [experiment_id], "tags.`trialforge.kind` = 'trial'")
    return {run.data.tags["trialforge.trial_id"]: [
        json.loads(value) for key, value in sorted(run.data.tags.items())
        if key.startswith("trialforge.exploit.")] for run in runs}


def test_pbt_from_the_shipped_spec_records_each_exploit(home: Path, ray_address: str) -> None:
    # Two at a time, each checked every epoch: trials long enough (8 epochs) that two overlap
    # for most of their run, whatever the start-up stagger (PBT compares live trials only).
    done = run_cli("sweep", "run", "jobs/cnn_pbt.yaml", "search.trials=4",
                   "search.concurrency=2", "train.epochs=8",
                   "search.scheduler.perturbation_interval=1",
                   "search.scheduler.quantile_fraction=0.5", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    stores = home_at(home)
    (record,) = query.sweeps(stores.db_url).itertuples()
    exploits = _exploits(stores.tracking_uri, str(record.mlflow_experiment_id))
    lineage = [entry for entries in exploits.values() for entry in entries]
    assert lineage, "a weak trial copied a strong one"
    for trial, entries in exploits.items():
        for entry in entries:
            assert entry["from_trial"] in exploits and entry["from_trial"] != trial
            assert 1 <= int(entry["from_epoch"]) <= 8  # type: ignore[call-overload]
            assert set(entry["config"]) >= {"train.lr", "model.dropout", "model.batchnorm"}
    assert record.model_version == "digits-cnn-pbt/1"
    shown = run_cli("sweep", "show", record.id, home=home)
    assert "exploits" in shown.stdout


def test_pb2_registers_a_champion_rebuilt_with_its_best_epochs_knobs(
    tmp_path: Path, ray_address: str,
) -> None:
    home = resolve_home(tmp_path / "home")
    spec = parse_spec({
        "name": "pb2", "model": {"family": "mlp", "depth": 1, "width": 16},
        "train": {"epochs": 8},  # long enough that trials overlap (see above)
        "search": {"trials": 3, "concurrency": 3,
                   "scheduler": {"type": "pb2", "perturbation_interval": 1,
                                 "quantile_fraction": 0.34},
                   "space": {"train.lr": {"loguniform": [1e-4, 0.1]},
                             "model.width": {"choice": [8, 32]}}}})
    result = run_sweep(spec, home)
    assert result.best is not None and result.model is not None
    assert result.best.params["model.width"] in (8, 32)
    # The registered version is the champion's best checkpoint with the knobs it trained
    # with at that epoch (an exploit copies another trial's width with its weights): it
    # loads strictly, as wide as the champion's knobs say.
    model = load_model("models:/pb2@champion", home.tracking_uri)
    first = next(layer for layer in model.modules() if isinstance(layer, torch.nn.Linear))
    assert first.out_features == result.best.params["model.width"]
    exploits = _exploits(home.tracking_uri, str(result.experiment_id))
    assert sum(map(len, exploits.values())) >= 1, "pb2 exploited"
    rows = query.trial_ends(home.db_url, result.sweep_id)
    assert len(rows) == 3 and all(row.state == "completed" for row in rows)
