"""`trialforge`: the command line. Thin: every command calls the library.

Heavy libraries (torch, Ray, MLflow) are imported inside commands, so `--help` stays fast.
User mistakes print one red line and exit 2; a sweep that produced nothing exits 1.
"""

from __future__ import annotations

import typer

from trialforge.cli.examples import init
from trialforge.cli.jobs import job_app
from trialforge.cli.registry import dashboard, model_app
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="trialforge")


if __name__ == "__main__":  # pragma: no cover
    main()
