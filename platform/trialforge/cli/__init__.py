"""`trialforge`: the command line. Thin: every command calls the library.

Heavy libraries (torch, Ray, MLflow) are imported inside commands, so `--help` stays fast.
User mistakes print one red line and exit 2; a sweep that produced nothing exits 1.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import typer

from trialforge.cli.examples import init
from trialforge.cli.jobs import job_app
from trialforge.cli.registry import dashboard, model_app
from trialforge.cli.replay import replay
from trialforge.cli.sweeps import sweep_app

app = typer.Typer(
    help="Hyperparameter sweeps for deep-learning models: one YAML spec, "
    "Ray Tune + Optuna + Ray Train, every trial in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sweep_app, name="sweep")
app.add_typer(model_app, name="model")
app.add_typer(job_app, name="job")
app.command("dashboard")(dashboard)
app.command("init")(init)
app.command("replay")(replay)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="trialforge")
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code: str | int | None) -> NoReturn:
    """Exit without the interpreter's teardown, which takes seconds once torch and Ray are
    loaded (their finalizers); every command closes its own stores before it returns."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        # Disconnected (or stopped, if this process started it) here rather than by Ray's exit
        # handler: objects of Tune's that the teardown frees afterwards would call into Ray's
        # closed core worker, which then ends the process (exit 1, unflushed output).
        ray.shutdown()
    if isinstance(code, str):
        sys.exit(code)  # a message to print
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
