"""`trialforge replay RUN_ID`: a CPU trial retrained from its record matches every epoch
exactly; a record that differs names the first epoch, and changed data is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from support import run_cli
from trialforge import parse_spec, resolve_home, run_sweep
from trialforge.replay import ReplayMismatch, replay_run
from trialforge.tracking.provenance import TAG_CODE, TAG_DATA, TAG_PACKAGES, TAG_TRIAL_SPEC

pytestmark = pytest.mark.e2e


def test_a_trial_replays_exactly_and_refuses_changed_data(
    tmp_path: Path, ray_address: str,
) -> None:
    rng = np.random.default_rng(3)
    size = rng.normal(size=200)
    table = pd.DataFrame({"size": size, "colour": rng.choice(["red", "green"], 200),
                          "label": np.where(size > 0, "big", "small")})
    table.to_csv(tmp_path / "t.csv", index=False)
    home = resolve_home(tmp_path / "home")
    spec = parse_spec({
        "name": "replayed", "seed": 7, "model": {"family": "mlp", "depth": 1, "width": 16,
                                                 "dropout": 0.2},
        "data": {"dataset": "table", "path": str(tmp_path / "t.csv"), "target": "label"},
        "train": {"epochs": 3, "lr_schedule": "cosine"},
        "search": {"trials": 1, "concurrency": 1, "scheduler": {"type": "fifo"}},
        "register": {"enabled": False}})
    result = run_sweep(spec, home)
    assert result.best is not None and result.best.run_id is not None
    run_id = result.best.run_id
    tags = MlflowClient(home.tracking_uri).get_run(run_id).data.tags
    assert tags[TAG_DATA].startswith("sha256:") and "trialforge" in tags[TAG_CODE]
    assert "torch" in json.loads(tags[TAG_PACKAGES])
    assert json.loads(tags[TAG_TRIAL_SPEC])["seed"] == 7 and tags["trialforge.seed"] == "7"

    done = run_cli("replay", run_id, home=home.root)
    assert done.returncode == 0, done.stderr
    assert f"run {run_id}: all 3 epochs match exactly" in " ".join(done.stdout.split())

    # A record that differs at epoch 2 (logged again there): the first difference is named.
    MlflowClient(home.tracking_uri).log_metric(run_id, "val_loss", 123.0, step=2)
    with pytest.raises(ReplayMismatch, match=r"^epoch 2: val_loss was 123\.0, replayed "):
        replay_run(run_id, home.tracking_uri)

    table.loc[0, "size"] = 99.0
    table.to_csv(tmp_path / "t.csv", index=False)
    changed = run_cli("replay", run_id, home=home.root)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "changed since run" in changed.stderr and "Traceback" not in changed.stderr
