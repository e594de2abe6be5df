"""The catalog on a real SQLite database through SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialforge.catalog import Catalog, SweepRecord, SweepState, new_sweep_id, utcnow
from trialforge.errors import NotFoundError


def _record(sweep_id: str, name: str = "s") -> SweepRecord:
    return SweepRecord(
        id=sweep_id, name=name, spec_yaml="name: s\n", family="cnn", state="running",
        created_at=utcnow(), study_name=f"trialforge-{sweep_id}", metric="val_accuracy",
        mode="max", trials_total=4,
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    store = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield store
    store.close()


def test_a_sweep_goes_from_running_to_finished(catalog: Catalog) -> None:
    catalog.add_sweep(_record("abc12345"))
    catalog.finish_sweep("abc12345", SweepState.FINISHED, best_value=0.98, trials_completed=4)
    again = Catalog(catalog.url).get_sweep("abc12345")
    assert again.state == "finished"
    assert again.best_value == 0.98
    assert again.finished_at is not None and again.finished_at >= again.created_at


def test_a_unique_prefix_finds_a_sweep(catalog: Catalog) -> None:
    catalog.add_sweep(_record("abc12345"))
    catalog.add_sweep(_record("abd00000"))
    assert catalog.get_sweep("abc").id == "abc12345"
    with pytest.raises(NotFoundError, match="matches 2 sweeps"):
        catalog.get_sweep("ab")
    with pytest.raises(NotFoundError, match=r"no sweep .zzz..*trialforge sweep list"):
        catalog.get_sweep("zzz")
    with pytest.raises(NotFoundError):
        catalog.get_sweep("%")  # LIKE wildcards are escaped


def test_list_is_newest_first(catalog: Catalog) -> None:
    ids = [new_sweep_id() for _ in range(3)]
    for sweep_id in ids:
        catalog.add_sweep(_record(sweep_id))
    assert [r.id for r in catalog.list_sweeps()] == ids[::-1]
    assert len(catalog.list_sweeps(limit=2)) == 2
    assert len(set(ids)) == 3


def test_a_catalog_made_before_pareto_fronts_gains_the_column(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:  # the first release's table, without pareto_front
        connection.execute(text("CREATE TABLE trialforge_sweeps (id VARCHAR(32) PRIMARY KEY, "
                                "name VARCHAR(100))"))
        connection.execute(text("INSERT INTO trialforge_sweeps VALUES ('abc', 'old')"))
    Catalog(url).close()
    columns = {c["name"] for c in inspect(engine).get_columns("trialforge_sweeps")}
    assert "pareto_front" in columns
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM trialforge_sweeps")).scalar() == "old"
    engine.dispose()


def test_only_a_sqlite_file_url_names_a_file(tmp_path: Path) -> None:
    from trialforge.home import sqlite_file

    assert sqlite_file(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db"
    assert sqlite_file("sqlite:///relative.db") == Path("relative.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://user@host/db") is None
    assert sqlite_file("http://127.0.0.1:5000") is None


def test_redact_hides_passwords_in_store_urls() -> None:
    from trialforge.home import redact

    assert redact("postgresql+psycopg://tf:s3cret@db:5432/tf") == "postgresql+psycopg://tf:***@db:5432/tf"
    assert redact("http://admin:pw@127.0.0.1:5000") == "http://admin:***@127.0.0.1:5000"
    assert redact("sqlite:////tmp/home/mlflow.db") == "sqlite:////tmp/home/mlflow.db"


def test_ray_storage_can_move_off_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trialforge.home import resolve_home

    monkeypatch.delenv("TRIALFORGE_RAY_STORAGE", raising=False)
    embedded = resolve_home(tmp_path / "a")
    assert embedded.ray_results == str(tmp_path / "a" / "ray_results")
    monkeypatch.setenv("TRIALFORGE_RAY_STORAGE", "s3://bucket/trialforge")
    shared = resolve_home(tmp_path / "b").create()
    assert shared.ray_results == "s3://bucket/trialforge"
    assert not (tmp_path / "b" / "ray_results").exists()  # nothing made for it locally
