"""Helpers shared by the tests (importable as `support`: tests/ is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIALFORGE = Path(sys.executable).with_name("trialforge")
STORE_VARIABLES = ("TRIALFORGE_HOME", "MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "RAY_ADDRESS")


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
