"""The CLI without Ray: help, and user mistakes as one red line, exit 2, nothing written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support import REPO, TRIALFORGE, run_cli


def test_help_everywhere(home: Path) -> None:
    for command in ([], ["sweep"], ["sweep", "run"], ["sweep", "list"], ["sweep", "show"],
                    ["model"], ["model", "list"]):
        done = run_cli(*command, "--help", home=home)
        assert done.returncode == 0, done.stderr
        assert "Usage: trialforge" in done.stdout


def test_help_is_fast(home: Path) -> None:
    started = time.monotonic()
    run_cli("--help", home=home)
    elapsed = time.monotonic() - started
    # Not a benchmark (benchmarks/ measures it): a guard that torch/Ray are not imported.
    assert elapsed < 10, elapsed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs/cnn_digits.yaml", "train.epochs=0"], "train.epochs: Input should be greater"),
        (["jobs/cnn_digits.yaml", "search.space.lr={loguniform: [1, 0.1]}"], "must be below"),
        (["jobs/cnn_digits.yaml", "model.family=resnet9000"], "unknown family"),
        (["jobs/cnn_digits.yaml", "search.metric=f1"], "metric 'f1' is unknown"),
        (["jobs/cnn_digits.yaml", "search.scheduler.type=pbt"], "'asha'"),
        (["jobs/cnn_digits.yaml", "data.dataset=imagenet"], "data.dataset"),
        (["jobs/cnn_digits.yaml", "model.activation=swish"], "model.activation"),
        (["jobs/cnn_digits.yaml", "trials"], "write key=value"),
        (["jobs/no_such_spec.yaml"], "spec file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    home: Path, args: list[str], message: str
) -> None:
    done = run_cli("sweep", "run", *args, home=home)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    assert not home.exists(), "a rejected spec must not create the home folder"


def test_unknown_sweep_id_is_a_clear_error(home: Path) -> None:
    done = run_cli("sweep", "show", "deadbeef", home=home)
    assert done.returncode == 2
    assert "no sweep 'deadbeef'" in done.stderr


def test_empty_catalog_says_how_to_start(home: Path) -> None:
    done = run_cli("sweep", "list", home=home)
    assert done.returncode == 0
    assert "no sweeps yet" in done.stdout


def test_console_script_is_installed() -> None:
    assert TRIALFORGE.exists()
    assert (REPO / "jobs" / "cnn_digits.yaml").exists()
