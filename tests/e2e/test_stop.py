"""`search.stop` from the CLI: the search ends when its target is reached, says why in the
catalog, the parent run and `sweep show`, and registers its best as usual."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from support import home_at, run_cli
from trialforge import query

pytestmark = pytest.mark.e2e


def test_a_reached_target_ends_the_search_and_says_why(home: Path, ray_address: str) -> None:
    done = run_cli("sweep", "run", "jobs/mlp_digits.yaml", "search.trials=6",
                   "search.concurrency=1", "train.epochs=2", "search.scheduler.type=fifo",
                   "search.stop.target=0.5", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    stores = home_at(home)
    (record,) = query.sweeps(stores.db_url).itertuples()
    sweep = query.sweep(stores.db_url, record.id)
    assert sweep.stop_reason is not None
    assert sweep.stop_reason.startswith("target: val_accuracy ")
    assert sweep.stop_reason.endswith("reached 0.5")
    assert sweep.trials_completed + sweep.trials_stopped < 6, "the search ended early"
    assert sweep.model_version is not None, "the best is registered as usual"
    parent = MlflowClient(stores.tracking_uri).get_run(str(sweep.mlflow_parent_run_id))
    assert parent.data.tags["trialforge.reason"] == f"stopped early: {sweep.stop_reason}"
    assert f"the search stopped early: {sweep.stop_reason}" in " ".join(done.stdout.split())
    shown = run_cli("sweep", "show", record.id, home=home)
    assert f"stopped early: {sweep.stop_reason}" in " ".join(shown.stdout.split())
