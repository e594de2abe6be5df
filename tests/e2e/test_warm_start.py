"""`search.warm_start`: an earlier sweep's finished trials that fit the new space join the
new study, its best is evaluated first, the rest are counted and skipped with the reason;
`sweep show` says what came from where; an unknown sweep or another objective is refused."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from support import dashboard_table, run_cli
from trialforge import parse_spec, query, resolve_home, run_sweep
from trialforge.search.tuner import optuna_storage

pytestmark = pytest.mark.e2e


def _spec(name: str, widths: list[int], **search: object) -> dict[str, object]:
    return {"name": name, "model": {"family": "mlp", "depth": 1, "width": widths[-1]},
            "train": {"epochs": 1},
            "search": {"trials": 4, "concurrency": 2, "scheduler": {"type": "fifo"},
                       "space": {"model.width": {"choice": widths},
                                 "train.lr": {"loguniform": [1e-3, 0.1]}}, **search}}


def test_a_new_sweep_starts_from_an_earlier_ones_trials(tmp_path: Path, ray_address: str) -> None:
    home = resolve_home(tmp_path / "home")
    earlier = run_sweep(parse_spec(_spec("earlier", [8, 32, 64])), home)  # 64 first
    storage = optuna_storage(home)
    done = optuna.load_study(study_name=f"trialforge-{earlier.sweep_id}", storage=storage)
    finished = [t for t in done.trials if t.state == optuna.trial.TrialState.COMPLETE]
    wide = sum(1 for t in finished if t.params["model.width"] == 64)
    assert wide >= 1

    later = run_sweep(parse_spec(_spec("later", [8, 32], warm_start=["earlier"])), home)
    record = query.sweep(home.db_url, later.sweep_id)
    warm = json.loads(str(record.warm_start))
    assert warm["sources"] == {earlier.sweep_id: "earlier"}
    assert warm["added"] == len(finished) - wide and warm["first"] == 1
    assert warm["skipped"] == {"model.width outside the new space": wide}
    study = optuna.load_study(study_name=f"trialforge-{later.sweep_id}", storage=storage)
    origins = [t.user_attrs.get("trialforge.origin") for t in study.trials]
    assert sum(1 for origin in origins if origin) == warm["added"], "with their distributions"
    fitting = [t for t in finished if t.params["model.width"] != 64]
    best = max(fitting, key=lambda t: (t.value, -t.number))
    expected = f"{earlier.sweep_id}/{best.user_attrs['trialforge.trial_id']}"
    # The best of them is evaluated first, in this sweep, and marked as such.
    (first,) = [end for end in query.trial_ends(home.db_url, later.sweep_id) if end.origin]
    assert first.origin == expected
    run = MlflowClient(home.tracking_uri).get_run(str(first.run_id))
    assert run.data.tags["trialforge.origin"] == expected
    assert float(run.data.params["train.lr"]) == pytest.approx(best.params["train.lr"])
    assert later.best is not None and later.best.run_id in {
        end.run_id for end in query.trial_ends(home.db_url, later.sweep_id)}, \
        "the champion is one of this sweep's trials"
    shown = " ".join(run_cli("sweep", "show", later.sweep_id, home=home.root).stdout.split())
    assert (f"warm start: {warm['added']} trials from earlier ({earlier.sweep_id}), the best "
            f"1 evaluated first; {wide} skipped ({wide}: model.width outside the new space)"
            in shown)
    assert expected in shown  # the origin column
    # The dashboard marks it too: the Sweeps page's "warm start from", Compare's origin column.
    sweeps = dashboard_table(home, "views/sweeps.py", {})
    assert sweeps.set_index("id").loc[later.sweep_id, "warm_from"] == earlier.sweep_id
    runs = dashboard_table(home, "views/compare.py", {"sweep": later.sweep_id})
    assert runs["origin"].dropna().tolist() == [expected]

    # An unknown sweep, or one that optimized another metric, is refused before any work.
    unknown = run_cli("sweep", "run", "jobs/mlp_digits.yaml", "search.warm_start=[nosuch]",
                      home=home.root)
    assert unknown.returncode == 2
    assert "search.warm_start: no finished sweep with id or name 'nosuch'" in unknown.stderr
    other = run_cli("sweep", "run", "jobs/mlp_digits.yaml", "search.warm_start=[earlier]",
                    "search.metric=val_loss", home=home.root)
    assert other.returncode == 2
    said = " ".join(other.stderr.split())
    assert ("optimized max val_accuracy, this one min val_loss: its trials' scores do not "
            "compare") in said
    assert len(query.sweeps(home.db_url)) == 2, "nothing written"
