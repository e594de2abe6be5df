"""Shared fixtures: an isolated home per test and one Ray instance per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import STORE_VARIABLES

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

