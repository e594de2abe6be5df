"""`search.constraints`: trials outside a bound are marked infeasible in the catalog, MLflow
and Optuna, never registered; a sweep with no feasible trial says so and registers nothing."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from support import dashboard_table, run_cli
from trialforge import parse_spec, query, resolve_home, run_sweep
from trialforge.search.tuner import optuna_storage

pytestmark = pytest.mark.e2e

# An MLP on digits: width 8 has 610 parameters, width 256 has 19,210.
SPEC = {"name": "small-only", "model": {"family": "mlp", "depth": 1, "width": 256},
        "train": {"epochs": 1},
        "search": {"trials": 4, "concurrency": 2, "scheduler": {"type": "fifo"},
                   "space": {"model.width": {"choice": [256, 8]}},
                   "constraints": {"params": {"max": 5000}}}}


def test_infeasible_trials_are_marked_and_never_the_champion(
    tmp_path: Path, ray_address: str,
) -> None:
    home = resolve_home(tmp_path / "home")
    result = run_sweep(parse_spec(SPEC), home)  # the spec's own point (256 wide) comes first
    assert result.best is not None and result.best.params["model.width"] == 8
    ends = query.trial_ends(home.db_url, result.sweep_id)
    infeasible = [end for end in ends if end.infeasible]
    assert infeasible and all(end.infeasible == "params 19210 > max 5000" for end in infeasible)
    runs = MlflowClient(home.tracking_uri).search_runs(
        [str(result.experiment_id)], "tags.`trialforge.kind` = 'trial'")
    feasible = {run.data.params["model.width"]: run.data.tags["trialforge.feasible"]
                for run in runs}
    assert feasible == {"8": "true", "256": "false: params 19210 > max 5000"}
    study = optuna.load_study(study_name=f"trialforge-{result.sweep_id}",
                              storage=optuna_storage(home))
    assert study.best_trial.params["model.width"] == 8, "Optuna leaves the infeasible out"
    assert result.model is not None, "the best feasible trial is registered"
    assert query.sweep(home.db_url, result.sweep_id).best_run_id == result.best.run_id
    shown = " ".join(run_cli("sweep", "show", result.sweep_id, home=home.root).stdout.split())
    assert "feasible" in shown and "false: params 19210 > max 5000" in shown
    runs = dashboard_table(home, "views/compare.py", {"sweep": result.sweep_id})
    assert set(runs["feasible"]) == {"true", "false: params 19210 > max 5000"}


def test_a_sweep_with_no_feasible_trial_registers_nothing(home: Path, ray_address: str) -> None:
    done = run_cli("sweep", "run", "jobs/mlp_digits.yaml", "search.trials=2", "train.epochs=1",
                   "search.concurrency=2", "search.constraints.params.max=10",
                   home=home, ray_address=ray_address)
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert "no trial met search.constraints (2 infeasible, e.g. params" in said
    assert "loosen the bounds" in said
    (record,) = query.sweeps(resolve_home(home).db_url).itertuples()
    assert record.state == "failed" and record.model_version is None
