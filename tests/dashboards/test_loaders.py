"""The dashboard's link to a run in the MLflow UI never carries credentials."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support import REPO
from trialforge.home import Home

sys.path.insert(0, str(REPO / "dashboards"))
import loaders  # a dashboard module: Streamlit puts its folder on the path


def stores(tracking_uri: str) -> Home:
    return Home(Path("/tmp/home"), tracking_uri, "sqlite:////tmp/home/trialforge.db")


def test_run_link_points_at_the_tracking_server_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loaders.MLFLOW_UI_VARIABLE, raising=False)
    url = loaders.mlflow_run_url(stores("https://ops:pw@mlflow.internal:5000/"), "3", "abc")
    assert url == "https://mlflow.internal:5000/#/experiments/3/runs/abc"


def test_run_link_for_a_local_store_needs_the_ui_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loaders.MLFLOW_UI_VARIABLE, raising=False)
    assert loaders.mlflow_run_url(stores("sqlite:////tmp/home/mlflow.db"), "1", "abc") is None
    monkeypatch.setenv(loaders.MLFLOW_UI_VARIABLE, "http://127.0.0.1:5000")
    url = loaders.mlflow_run_url(stores("sqlite:////tmp/home/mlflow.db"), "1", "abc")
    assert url == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
