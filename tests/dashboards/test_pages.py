"""Each dashboard page run by Streamlit's `AppTest` against real stores: it renders without
an exception, its widgets filter, and its charts carry the traces they should."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import plotly.io
import pytest
import streamlit as st
from mlflow.tracking import MlflowClient
from plotly.graph_objects import Figure
from streamlit.testing.v1 import AppTest

from support import REPO, home_at
from trialforge import query
from trialforge.catalog import Catalog, SweepRecord
from trialforge.home import Home

APP = REPO / "dashboards" / "app.py"


VIEWS = {"models": "registry"}  # a page's URL path -> its file in dashboards/views/ if not the same


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """`open_app(home, page, **query)`: the app on `page`, run once, reading `home`."""

    def open_page(home: Home, page: str, **params: str) -> AppTest:
        monkeypatch.setenv("TRIALFORGE_HOME", str(home.root))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", home.tracking_uri)
        monkeypatch.setenv("TRIALFORGE_DB", home.db_url)
        st.cache_data.clear()  # caches live in this process: one home must not leak into
        st.cache_resource.clear()  # the next test's
        app = AppTest.from_file(str(APP), default_timeout=180)
        if page in VIEWS:  # a page with a URL path of its own is known once the app ran
            app.run()
        app.switch_page(f"views/{VIEWS.get(page, page)}.py")
        for key, value in params.items():
            app.query_params[key] = value
        return run(app)

    yield open_page
    st.cache_data.clear()
    st.cache_resource.clear()


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def figures(app: AppTest) -> dict[str, Figure]:
    return {chart.key: plotly.io.from_json(chart.proto.spec)
            for chart in app.get("plotly_chart")}


def array(values: object) -> np.ndarray:
    """Plotly's JSON keeps nested arrays as base64 `bdata`: decode them."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def infos(app: AppTest) -> str:
    return " ".join(str(element.value) for element in app.info)


def test_sweeps_page_lists_and_filters_sweeps(tiny_sweep: Home, open_app) -> None:
    app = open_app(tiny_sweep, "sweeps")
    table = app.dataframe[0].value
    assert list(table["name"]) == ["cnn-digits"]
    assert table["open"].iloc[0] == f"compare?sweep={table['id'].iloc[0]}"
    assert table["trials"].iloc[0].endswith("/ 4")
    record = query.sweep(tiny_sweep.db_url, str(table["id"].iloc[0]))
    assert record.test_value is not None and table["test_value"].iloc[0] == record.test_value
    app.text_input[0].input("no-such-sweep")
    assert run(app).dataframe[0].value.empty
    app.text_input[0].input(str(table["id"].iloc[0])[:4])  # an id prefix
    assert len(run(app).dataframe[0].value) == 1
    assert app.multiselect[0].options == ["finished"]  # the states there are
    app.multiselect[0].select("finished")
    app.multiselect[1].select("cnn")
    assert len(run(app).dataframe[0].value) == 1


def test_compare_page_table_drives_every_chart(tiny_sweep: Home, open_app) -> None:
    app = open_app(tiny_sweep, "compare")
    table = app.dataframe[0].value
    assert len(table) == 4
    value = "val_accuracy (best epoch)"  # by default, the scoring rule of every store
    assert table[value].between(0, 1).all()
    (sweep_id,) = query.sweeps(tiny_sweep.db_url).id
    scores = sorted(end.value for end in query.trial_ends(tiny_sweep.db_url, sweep_id))
    assert sorted(table[value]) == pytest.approx(scores), "the catalog's scores"
    curves = figures(app)["curves"]
    assert curves.data[0].name == "runs"  # every run in one trace, SVG while it is small
    assert curves.data[0].type == "scatter"
    assert [t.name for t in curves.data[2::2]] == ["all runs"]  # the mean (after its band)

    group = next(s for s in app.selectbox if s.label == "Group curves by")
    group.select("model.activation")
    curves = figures(run(app))["curves"]
    means = {t.name for t in curves.data[2::2]}
    activations = set(table["params.model.activation"])
    assert means == {f"model.activation={a}" for a in activations}

    app.radio[0].set_value("max")
    assert "val_accuracy (max)" in run(app).dataframe[0].value
    app.toggle[0].set_value(False)  # every parameter, not only those that differ
    assert "params.train.epochs" in run(app).dataframe[0].value

    expected = {"Parallel coordinates": ("parcoords", "parcoords"),
                "Importance": ("importance", "bar"), "Slices": ("slice", "scattergl"),
                "History": ("history", "scattergl"), "Timeline": ("timeline", "scatter")}
    for tab, (key, trace) in expected.items():
        app.query_params["chart"] = tab
        charts = figures(run(app))
        assert list(charts) == [key], tab  # lazy tabs: only the open one is drawn
        assert charts[key].data[0].type == trace, tab
    app.query_params["chart"] = "Parallel coordinates"
    parcoords = figures(run(app))["parcoords"].data[0]
    labels = [d.label for d in parcoords.dimensions]
    assert "train.lr (log)" in labels and labels[-1] == "val_accuracy (max)"
    assert all(len(array(d.values)) == 4 for d in parcoords.dimensions)


def test_compare_page_state_filter_narrows_table_and_charts(tiny_sweep: Home, open_app) -> None:
    app = open_app(tiny_sweep, "compare", chart="Timeline")
    table = app.dataframe[0].value
    state = table["state"].iloc[0]
    states = next(m for m in app.multiselect if m.label == "States")
    states.select(state)
    narrowed = run(app).dataframe[0].value
    assert set(narrowed["state"]) == {state} and len(narrowed) == (table["state"] == state).sum()
    timeline = figures(app)["timeline"]
    assert [t.name for t in timeline.data] == [state]
    assert f"Charts show {len(narrowed)} of 4 runs" in app.caption[0].value


def test_run_page_shows_params_curves_images_checkpoint(tiny_sweep: Home, open_app) -> None:
    run_id = str(query.models(tiny_sweep.tracking_uri)["run_id"].iloc[0])
    app = open_app(tiny_sweep, "run", run=run_id)
    params, metrics = (frame.value for frame in app.dataframe[:2])
    assert "train.lr" in set(params["param"]) and "val_accuracy" in set(metrics["metric"])
    curves = figures(app)["run_curves"]
    panels = {annotation.text for annotation in curves.layout.annotations}  # a panel a metric
    assert {"val_accuracy", "val_loss", "train_loss", "val_f1"} <= panels
    assert "params" not in panels  # constant cost metrics are not curves
    assert len(app.get("image")) == 1  # the confusion matrix
    assert app.get("download_button")
    assert "mlflow ui --backend-store-uri" in " ".join(c.value for c in app.caption)


def test_run_page_picks_a_run_when_no_link_is_followed(tiny_sweep: Home, open_app) -> None:
    app = open_app(tiny_sweep, "run")
    assert [s.label for s in app.selectbox] == ["Sweep", "Run"]
    assert app.header[0].value.startswith("trial_")


def test_models_page_sets_an_alias_only_after_confirmation(tiny_sweep: Home, open_app) -> None:
    app = open_app(tiny_sweep, "models")
    table = app.dataframe[0].value
    assert table.iloc[0]["aliases"] == "champion"
    assert table.iloc[0]["run"].startswith("run?run=")
    next(s for s in app.selectbox if s.label == "Alias").select("challenger")
    next(b for b in app.button if b.label == "Set alias ...").click()
    run(app)
    assert "Point alias **challenger** of **digits-cnn** at version **1**" in app.warning[0].value
    client = MlflowClient(tiny_sweep.tracking_uri)
    assert "challenger" not in client.get_registered_model("digits-cnn").aliases
    next(b for b in app.button if b.label == "Cancel").click()
    assert not run(app).warning
    assert "challenger" not in client.get_registered_model("digits-cnn").aliases

    next(b for b in app.button if b.label == "Set alias ...").click()
    next(b for b in run(app).button if b.label == "Confirm").click()
    run(app)
    assert client.get_registered_model("digits-cnn").aliases == {"champion": 1, "challenger": 1}
    assert "challenger → digits-cnn version 1" in app.success[0].value
    client.delete_registered_model_alias("digits-cnn", "challenger")


@pytest.mark.parametrize("page", ["sweeps", "compare", "run", "models"])
def test_every_page_explains_an_empty_home(page: str, home: Path, open_app) -> None:
    empty = home_at(home)
    app = open_app(empty, page)
    assert "No sweeps yet" in infos(app) or "No registered models yet" in infos(app)
    assert not home.exists()  # reading created no store


def test_a_running_sweep_without_runs_says_so(home: Path, open_app) -> None:
    stores = home_at(home)
    home.mkdir()
    experiment = MlflowClient(stores.tracking_uri).create_experiment("just-started")
    catalog = Catalog(stores.db_url)
    catalog.add_sweep(SweepRecord(
        id="run00001", name="just-started", spec_yaml="", family="cnn", state="running",
        created_at=datetime.now(timezone.utc), study_name="trialforge-run00001",
        mlflow_experiment_id=experiment, metric="val_accuracy", mode="max"))
    catalog.close()
    app = open_app(stores, "compare")
    assert "still running" in infos(app) and "No trial has reported yet" in infos(app)


def test_a_run_with_no_metrics_says_so(home: Path, open_app) -> None:
    stores = home_at(home)
    home.mkdir()
    client = MlflowClient(stores.tracking_uri)
    lineage = {"trialforge.backbone": "models:/digits-backbone/3",
               "trialforge.backbone_version": "3"}
    run_id = client.create_run(client.create_experiment("bare"), tags=lineage).info.run_id
    catalog = Catalog(stores.db_url)
    catalog.add_sweep(SweepRecord(
        id="bare0001", name="bare", spec_yaml="", family="cnn", state="failed",
        created_at=datetime.now(timezone.utc), study_name="trialforge-bare0001",
        metric="val_accuracy", mode="max"))
    catalog.close()
    app = open_app(stores, "run", run=run_id)
    assert "no per-epoch metrics" in infos(app) and "No artifacts" in infos(app)
    shown = app.dataframe[-1].value  # the lineage: which backbone version it started from
    assert dict(zip(shown["tag"], shown["value"], strict=True)) == lineage
    unknown = open_app(stores, "run", run="0" * 32)
    assert "no run" in unknown.error[0].value


def test_compare_page_with_a_thousand_runs(thousand_runs: Home, open_app) -> None:
    app = open_app(thousand_runs, "compare")
    assert len(app.dataframe[0].value) == 1000
    curves = figures(app)["curves"]
    assert len(curves.data) == 3  # one trace for every run, a band and a mean
    next(s for s in app.selectbox if s.label == "Group curves by").select("train.lr")
    curves = figures(run(app))["curves"]
    assert len(curves.data) == 1 + 2 * 5  # lr binned into five quantile groups
    for tab, key in [("Parallel coordinates", "parcoords"), ("Importance", "importance"),
                     ("Timeline", "timeline")]:
        app.query_params["chart"] = tab
        assert key in figures(run(app)), tab
