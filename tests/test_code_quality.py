"""The package stays lint-clean and type-checks under mypy --strict (DESIGN.md 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_ruff() -> None:
    folders = [f for f in ("platform", "tests", "benchmarks", "dashboards") if (REPO / f).is_dir()]
    done = subprocess.run(
        [str(BIN / "ruff"), "check", *folders],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict() -> None:
    done = subprocess.run(
        [str(BIN / "mypy")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
