"""A new home's MLflow store: migrated once per MLflow version, then copied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from trialforge.search.stores import cache_dir, create_tracking_store


def _experiments(store: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(store) as connection:
        return connection.execute(
            "SELECT experiment_id, name, artifact_location FROM experiments").fetchall()


def test_the_first_store_is_kept_as_a_template_and_the_next_are_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "first").mkdir()
    create_tracking_store(tmp_path / "first" / "mlflow.db")
    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    assert template.parent == tmp_path / "cache" / "trialforge"
    assert _experiments(template) == [], "no Default experiment rooted in another folder"
    with sqlite3.connect(template) as connection:  # a mark only the template carries
        connection.execute("CREATE TABLE template_mark (x INTEGER)")

    (tmp_path / "second").mkdir()
    monkeypatch.chdir(tmp_path / "second")
    store = tmp_path / "second" / "mlflow.db"
    create_tracking_store(store)
    with sqlite3.connect(store) as connection:
        assert connection.execute(
            "SELECT name FROM sqlite_master WHERE name = 'template_mark'").fetchone()
    assert _experiments(store) == [(0, "Default", str(tmp_path / "second" / "mlruns" / "0"))]
    client = MlflowClient(f"sqlite:///{store}")  # a store MLflow itself takes and writes
    run = client.create_run(client.create_experiment("e"))
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_cache_that_cannot_be_written_costs_only_the_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cache").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    create_tracking_store(tmp_path / "mlflow.db")
    assert [name for _, name, _ in _experiments(tmp_path / "mlflow.db")] == ["Default"]
