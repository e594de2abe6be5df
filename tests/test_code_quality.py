"""The package stays lint-clean and type-checks under mypy --strict."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_mypy_strict_dashboards() -> None:
    """The dashboard's modules and pages (scripts Streamlit runs, importing each other by
    their folder) type-check too."""
    scripts = sorted(str(p.relative_to(REPO)) for p in (REPO / "dashboards").rglob("*.py"))
    done = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--ignore-missing-imports", "--explicit-package-bases",
         *scripts],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "MYPYPATH": "platform:dashboards"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
