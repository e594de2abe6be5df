"""The confirm stage: the search's top configurations retrained over new seeds, tagged apart
from the search, and a champion chosen by the confirmed mean."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import plotly.io
import pytest
import streamlit as st
from mlflow.tracking import MlflowClient
from streamlit.testing.v1 import AppTest

from support import REPO, run_cli
from trialforge import parse_spec, query, resolve_home, run_sweep
from trialforge.search.confirm import config_id, t_interval

pytestmark = pytest.mark.e2e


def test_the_top_configs_are_retrained_over_new_seeds_and_the_best_mean_wins(
    tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = resolve_home(tmp_path / "home")
    spec = parse_spec({
        "name": "confirmed", "model": {"family": "mlp", "depth": 1, "width": 32},
        "train": {"epochs": 2},
        "search": {"trials": 3, "concurrency": 2, "scheduler": {"type": "fifo"},
                   "space": {"train.lr": {"choice": [0.0003, 0.003, 0.03]}},
                   "confirm": {"top_k": 2, "seeds": 2}}})
    result = run_sweep(spec, home)
    assert result.best is not None and result.model is not None

    client = MlflowClient(home.tracking_uri)
    runs = client.search_runs([str(result.experiment_id)], "tags.`trialforge.kind` = 'trial'")
    stages = {run.info.run_id: run.data.tags["trialforge.stage"] for run in runs}
    assert sorted(stages.values()) == ["confirm"] * 4 + ["search"] * 3, "K x S new runs"
    search_ids = {run.data.tags["trialforge.config_id"] for run in runs
                  if stages[run.info.run_id] == "search"}
    confirm_runs = [run for run in runs if stages[run.info.run_id] == "confirm"]
    assert {run.data.tags["trialforge.config_id"] for run in confirm_runs} <= search_ids
    assert sorted(run.data.tags["trialforge.seed"] for run in confirm_runs) == ["1", "1", "2", "2"]
    assert all(run.data.params["data.split_seed"] == "0" for run in confirm_runs), \
        "a new seed, the search's split"

    # The catalog keeps config and seed apart for every trial.
    rows = query.trial_ends(home.db_url, result.sweep_id)
    assert sorted((row.stage, row.seed) for row in rows) == [
        ("confirm", 1), ("confirm", 1), ("confirm", 2), ("confirm", 2),
        ("search", 0), ("search", 0), ("search", 0)]

    # Each confirmed configuration: its seeds' scores, mean and 95% t-interval, best first.
    record = query.sweep(home.db_url, result.sweep_id)
    entries = json.loads(str(record.confirmed))
    assert len(entries) == 2 and all(len(entry["values"]) == 2 for entry in entries)
    for entry in entries:
        mean, low, high = t_interval(entry["values"])
        assert entry["mean"] == pytest.approx(statistics.fmean(entry["values"]))
        assert (entry["low"], entry["high"]) == pytest.approx((low, high))
        assert low <= mean <= high
    assert entries[0]["mean"] >= entries[1]["mean"], "the champion: the best mean (max)"
    champion = result.confirmed[0]
    registered = client.get_model_version("confirmed", result.model.version)
    assert registered.tags["trialforge.config_id"] == champion.config_id == entries[0]["config_id"]
    assert float(registered.tags["trialforge.confirmed_mean"]) == pytest.approx(
        entries[0]["mean"], rel=1e-5)
    winner = client.get_run(registered.tags["trialforge.trial_run_id"])
    assert winner.data.tags["trialforge.stage"] == "confirm"
    assert config_id({"train.lr": float(winner.data.params["train.lr"])}) == champion.config_id
    parent = client.get_run(str(result.parent_run_id))
    assert parent.data.metrics["confirmed_mean"] == pytest.approx(entries[0]["mean"])

    shown = run_cli("sweep", "show", result.sweep_id, home=home.root)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "Confirmed over new seeds" in text and entries[0]["config_id"] in text
    assert "single seed" not in text

    # The dashboard's Compare page: each configuration's mean with its interval as error bars.
    monkeypatch.setenv("TRIALFORGE_HOME", str(home.root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", home.tracking_uri)
    monkeypatch.setenv("TRIALFORGE_DB", home.db_url)
    st.cache_data.clear()
    app = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=180)
    app.switch_page("views/compare.py")
    app.query_params["sweep"] = result.sweep_id
    app.query_params["chart"] = "Confirmed"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    charts = {chart.key: chart for chart in app.get("plotly_chart")}
    means = plotly.io.from_json(charts["confirmed"].proto.spec).data[0]
    assert list(means.y) == pytest.approx([entry["mean"] for entry in entries])
    assert list(means.error_y.array) == pytest.approx(
        [entry["high"] - entry["mean"] for entry in entries])
    st.cache_data.clear()
