"""Shared fixtures: an isolated home per test and one Ray instance per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import STORE_VARIABLES, home_at, run_cli
from trialforge.home import Home

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TRIALFORGE_HOME (not created: a command that fails early must not create it)."""
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "home"
    monkeypatch.setenv("TRIALFORGE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A local Ray instance for the whole session; CLI subprocesses join it via RAY_ADDRESS.

    Started once (Ray takes seconds to start), with the dashboard because Train V2 needs its
    State API, and shut down at the end of the session.
    """
    import ray

    ray.init(num_cpus=2, include_dashboard=True, logging_level="WARNING", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()




@pytest.fixture(scope="session")
def tiny_sweep(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A real finished sweep, read by the query and dashboard tests: 4 trials of the CNN on
    digits, 3 epochs, a tenth held out as its test split, its best model registered as
    digits-cnn@champion."""
    root = tmp_path_factory.mktemp("tiny_sweep") / "home"
    # One trial at a time: the same ASHA decisions every run (at least one trial stopped).
    done = run_cli("sweep", "run", "jobs/cnn_digits.yaml", "search.trials=4", "train.epochs=3",
                   "search.concurrency=1", "data.test_fraction=0.1",
                   home=root, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    return home_at(root)


@pytest.fixture(scope="session")
def thousand_runs(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A finished sweep of 1,000 runs written through MLflow's, Optuna's and the catalog's
    clients (`synthetic_sweep`): what the dashboard must stay fast with."""
    from synthetic_sweep import write_sweep

    home = home_at(tmp_path_factory.mktemp("thousand_runs") / "home")
    write_sweep(home, runs=1000)
    return home
