"""What every command shares: the consoles, the home option, and user errors as one line."""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from trialforge.errors import TrialforgeError

if TYPE_CHECKING:
    from trialforge.home import Home

# Soft wrap: long lines (paths, run ids) stay whole, so they can be copied. Piped output
# (logs, grep) gets wide tables instead of rich's 80-column default, which truncates ids.
_PIPE_WIDTH = 200
out = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err = Console(
    stderr=True, soft_wrap=True, highlight=False,
    width=None if sys.stderr.isatty() else _PIPE_WIDTH,
)
F = TypeVar("F", bound=Callable[..., Any])

HomeOption = Annotated[
    Optional[Path],
    typer.Option(
        "--home", envvar="TRIALFORGE_HOME",
        help="Folder of the embedded stores (default ./.trialforge).",
    ),
]


def user_errors(command: F) -> F:
    """Turn a `TrialforgeError` into one red line and its exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TrialforgeError as exc:
            # Escaped: a message quotes user input (`[low, high]`, a path), never markup.
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def home_of(path: Path | None) -> Home:
    """The home of `--home`/`TRIALFORGE_HOME`; one under a file is an error before any use."""
    from trialforge.home import resolve_home

    home = resolve_home(path)
    home.check()
    return home


def short(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def quiet_libraries() -> None:
    """Keep library chatter (migrations, progress bars, study creation) off the terminal."""
    for name, value in {
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # Tune warns when checkpoints every epoch force state snapshots; that is by design.
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    }.items():
        os.environ.setdefault(name, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


