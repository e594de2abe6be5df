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
    done = subprocess.run(
        [str(BIN / "ruff"), "check", "platform", "tests", "benchmarks"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict() -> None:
    done = subprocess.run(
        [str(BIN / "mypy")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
