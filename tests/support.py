"""Helpers shared by the tests (importable as `support`: tests/ is on sys.path)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trialforge.home import Home

REPO = Path(__file__).resolve().parents[1]
TRIALFORGE = Path(sys.executable).with_name("trialforge")
STORE_VARIABLES = ("TRIALFORGE_HOME", "MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "RAY_ADDRESS",
                   "TRIALFORGE_RAY_STORAGE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def home_at(root: Path) -> Home:
    """The embedded stores under `root`, whatever the environment says."""
    return Home(root, f"sqlite:///{root / 'mlflow.db'}", f"sqlite:///{root / 'trialforge.db'}")


def run_cli(
    *args: str,
    home: Path,
    ray_address: str | None = None,
    cwd: Path = REPO,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `trialforge ARGS` as a user would, in its own process."""
    environment = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    environment["TRIALFORGE_HOME"] = str(home)
    if ray_address:
        environment["RAY_ADDRESS"] = ray_address
    environment.update(env or {})
    return subprocess.run(
        [str(TRIALFORGE), *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


class RecordingSession:
    """The trial-session interface of one CPU worker that keeps what a loop reports (a fake
    for the loops' pure logic; Ray's sessions run in tests/e2e)."""

    rank = 0
    world_size = 1
    device = torch.device("cpu")

    def __init__(self, restore: dict[str, Any] | None = None) -> None:
        self.restore = restore
        self.reports: list[tuple[dict[str, float], dict[str, Any] | None, str]] = []
        self.figures: list[dict[str, Any]] = []  # made, per report

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        pass

    def check_stopped(self) -> None:
        pass

    def restored_checkpoint(self) -> dict[str, Any] | None:
        return self.restore

    def stream_shard(self, stream: Any, split: str) -> Any:
        return getattr(stream, split).iterator()

    def report(self, metrics: dict[str, float], checkpoint: dict[str, Any] | None = None,
               state: str = "running", figures: Mapping[str, Any] | None = None) -> None:
        # Copies: the checkpoint's tensors are the live weights, which training goes on to change.
        self.reports.append((dict(metrics), copy.deepcopy(checkpoint), state))
        self.figures.append({name: make() if callable(make) else make
                             for name, make in (figures or {}).items()})


def dashboard_table(home: Home, page: str, query: dict[str, str]) -> Any:
    """The first table a dashboard page shows for `home`, run under Streamlit's AppTest (a
    DataFrame)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    variables = {"TRIALFORGE_HOME": str(home.root), "MLFLOW_TRACKING_URI": home.tracking_uri,
                 "TRIALFORGE_DB": home.db_url}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    st.cache_data.clear()
    st.cache_resource.clear()  # the home the app resolved last time
    try:
        app = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=180)
        app.switch_page(page)
        for key, value in query.items():
            app.query_params[key] = value
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        return app.dataframe[0].value
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
