"""A home's sqlite stores, created before its first sweep: MLflow's, the catalog, Optuna's.

MLflow makes a new sqlite store by running its ~60 schema migrations one by one: ~3.5 s of
CPU before a new home's first trial can start, on every new home (each test's, each CI run's,
each benchmark's). For one MLflow version they always yield the same empty store, so the
first one is kept in the user's cache folder (platformdirs': `$XDG_CACHE_HOME/trialforge`,
else `~/.cache/trialforge`, on Linux) and the next ones are copies of it, made in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import mlflow
import platformdirs
from mlflow.tracking import MlflowClient

from trialforge.catalog import Catalog
from trialforge.home import Home, sqlite_file
from trialforge.search.tuner import optuna_storage

logger = logging.getLogger(__name__)


def create_stores(home: Home) -> None:
    """Create the home's sqlite stores not there yet, one process at a time.

    MLflow's migrations, Optuna's tables and the catalog's each fail ("table ... already
    exists") when two processes create the same fresh file at once: two sweeps started
    together on a new home. Existing stores are left to their libraries.
    """
    tracking, catalog = sqlite_file(home.tracking_uri), sqlite_file(home.db_url)
    if all(path is None or path.exists() for path in (tracking, catalog)):
        return
    with home.stores_lock():
        if tracking is not None and not tracking.exists():
            create_tracking_store(tracking)
        if catalog is not None and not catalog.exists():
            Catalog(home.db_url).close()
            optuna_storage(home).engine.dispose()


def create_tracking_store(path: Path) -> None:
    """A new, empty MLflow sqlite store at `path`: a copy of this MLflow version's template,
    or made by MLflow's migrations (and then kept as the template)."""
    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    if template.exists():
        _copy(template, path)
    # MLflow migrates a new file; a copy gets its Default experiment, with its own root.
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    if not template.exists():
        try:
            _keep_as_template(path, template)
        except (OSError, sqlite3.Error) as exc:  # a cache that cannot be written: no harm
            logger.debug("MLflow store template %s not kept: %s", template, exc)


def cache_dir() -> Path:
    """trialforge's folder in the user's cache (the platform's own place for one)."""
    return Path(platformdirs.user_cache_dir("trialforge", appauthor=False))


def _keep_as_template(store: Path, template: Path) -> None:
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        empty = Path(tmp) / store.name
        shutil.copyfile(store, empty)
        # Without the Default experiment, whose artifact root is this process's folder.
        # sqlite3's own context manager commits but leaves the connection open.
        with contextlib.closing(sqlite3.connect(empty)) as connection, connection:
            connection.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(empty, template)  # whole or not at all, if two processes keep one at once


def _copy(template: Path, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    shutil.copyfile(template, partial)
    os.replace(partial, path)
