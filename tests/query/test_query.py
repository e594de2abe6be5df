"""`trialforge.query` against real stores: a real tiny sweep, and 1,000 runs written through
MLflow's client (paging past MLflow's 1,000-result pages)."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from trialforge import query
from trialforge.errors import NotFoundError
from trialforge.home import Home
from trialforge.query import compare

pytestmark = pytest.mark.e2e


def only_sweep(home: Home) -> pd.Series:
    frame = query.sweeps(home.db_url)
    assert len(frame) == 1
    return frame.iloc[0]


def test_trials_of_a_real_sweep_join_mlflow_optuna_and_the_catalog(tiny_sweep: Home) -> None:
    sweep = only_sweep(tiny_sweep)
    assert sweep["state"] == "finished" and sweep["trials_total"] == 4
    trials = query.trials(tiny_sweep.tracking_uri, sweep["mlflow_experiment_id"], sweep["id"])
    assert len(trials) == 4
    assert set(trials["state"]) <= {"completed", "stopped_early"}
    assert trials["seconds"].gt(0).all() and trials["start"].is_monotonic_increasing
    assert trials["params.train.lr"].dtype.kind == "f"  # params come back as numbers
    assert trials["metrics.val_accuracy"].between(0, 1).all()
    assert trials["best_epoch"].dropna().between(1, 3).all()

    study = query.study_trials(tiny_sweep.db_url, sweep["study_name"])
    states = list(trials["state"])
    assert study is not None and study.completed == states.count("completed")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) == states.count("stopped_early"), "the scheduler's stops are PRUNED"
    assert "train.lr" in study.log_params and "model.dropout" not in study.log_params
    # Every Optuna trial names its Tune trial, the tag on its MLflow run.
    assert {t.user_attrs["trialforge.trial_id"] for t in study.trials} == set(trials["trial_id"])
    picked = set(trials["trial_id"][:2])
    assert len(query.as_study(study, picked).trials) == 2


def test_histories_give_every_epoch_of_every_run(tiny_sweep: Home) -> None:
    sweep = only_sweep(tiny_sweep)
    trials = query.trials(tiny_sweep.tracking_uri, sweep["mlflow_experiment_id"], sweep["id"])
    history = query.histories(tiny_sweep.tracking_uri, list(trials["run_id"]),
                              ["val_accuracy", "val_loss"])
    per_run = history[history["key"] == "val_accuracy"].groupby("run_id")["step"].agg(list)
    for run_id, steps in per_run.items():
        assert steps == list(range(1, len(steps) + 1)), run_id
    last = compare.reduce_metric(history, "val_accuracy", "last")
    assert last.to_dict() == pytest.approx(
        trials.set_index("run_id")["metrics.val_accuracy"].to_dict())


def test_run_detail_lists_its_artifacts_and_downloads_them(
    tiny_sweep: Home, tmp_path: Path
) -> None:
    sweep = only_sweep(tiny_sweep)
    best = query.run(tiny_sweep.tracking_uri, str(query.models(tiny_sweep.tracking_uri)
                                                   ["run_id"].iloc[0]))
    assert best.sweep_id == sweep["id"] and best.best_epoch is not None
    assert best.images == ["confusion_matrix.png"]
    assert [a.path for a in best.checkpoint] == ["best_checkpoint/checkpoint.pt"]
    image = query.artifact_file(tiny_sweep.tracking_uri, best.run_id, "confusion_matrix.png",
                                tmp_path)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        query.run(tiny_sweep.tracking_uri, "nope")


def test_models_name_the_sweep_and_the_run_behind_each_version(tiny_sweep: Home) -> None:
    models = query.models(tiny_sweep.tracking_uri)
    row = models.iloc[0]
    assert (row["name"], row["version"], row["aliases"]) == ("digits-cnn", 1, "champion")
    assert row["sweep_id"] == only_sweep(tiny_sweep)["id"]
    assert row["metric"] == "val_accuracy" and 0 < row["value"] <= 1
    assert MlflowClient(tiny_sweep.tracking_uri).get_run(row["run_id"]).data.tags[
        "trialforge.kind"] == "trial"


def test_a_thousand_runs_page_past_mlflows_page_size(thousand_runs: Home) -> None:
    sweep = only_sweep(thousand_runs)
    started = time.perf_counter()
    trials = query.trials(thousand_runs.tracking_uri, sweep["mlflow_experiment_id"],
                          sweep["id"])
    took = time.perf_counter() - started
    assert len(trials) == 1000 and trials["run_id"].is_unique
    paged = query.trials(thousand_runs.tracking_uri, sweep["mlflow_experiment_id"],
                         sweep["id"], page_size=300)  # four pages
    assert set(paged["run_id"]) == set(trials["run_id"])
    history = query.histories(thousand_runs.tracking_uri, list(trials["run_id"]),
                              ["val_accuracy"])
    assert history["run_id"].nunique() == 1000
    steps = history.groupby("run_id")["step"].max()
    assert steps.max() == 20 and steps.min() <= 2  # stopped-early runs are shorter
    study = query.study_trials(thousand_runs.db_url, sweep["study_name"])
    assert study is not None and len(study.trials) == 1000
    print(f"1,000 runs read in {took:.2f} s")  # figures live in benchmarks/dashboard.py


def test_reading_an_empty_or_missing_store_creates_nothing(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert query.sweeps(missing).empty
    assert query.study_trials(missing, "trialforge-x") is None
    with pytest.raises(NotFoundError):
        query.sweep(missing, "abc")
    assert list(tmp_path.iterdir()) == []
