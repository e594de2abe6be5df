"""`trialforge`: the command line. Thin: every command calls the library.

Heavy libraries (torch, Ray, MLflow) are imported inside commands, so `--help` stays fast.
User mistakes print one red line and exit 2; a sweep that produced nothing exits 1.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from trialforge.errors import TrialforgeError

if TYPE_CHECKING:
    from trialforge.home import Home
    from trialforge.search.monitor import Progress
    from trialforge.search.sweep import SweepResult

app = typer.Typer(
    help="Hyperparameter sweeps for deep-learning models: one YAML spec, "
    "Ray Tune + Optuna + Ray Train, every trial in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sweep_app = typer.Typer(help="Run and inspect sweeps.", no_args_is_help=True)
model_app = typer.Typer(help="Models in the MLflow Model Registry.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")
app.add_typer(model_app, name="model")

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
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _home(path: Path | None) -> Home:
    from trialforge.home import resolve_home

    return resolve_home(path)


@sweep_app.command("run")
@user_errors
def sweep_run(
    spec: Annotated[Path, typer.Argument(help="The sweep spec (YAML).")],
    overrides: Annotated[
        Optional[list[str]],
        typer.Argument(help="Spec overrides as key=value, e.g. train.epochs=3 search.trials=4."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run a sweep: Ray Tune + Optuna over the spec's space, trials tracked in MLflow."""
    from trialforge.spec import load_spec

    # Like `python -m`, find a user's own builder (`family: mynets:tiny`) in the current folder.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    sweep_spec = load_spec(spec, overrides or [])  # invalid input stops here, nothing written
    _quiet_libraries()
    from trialforge.search import run_sweep

    where = _home(home)
    err.print(
        f"sweep [bold]{sweep_spec.name}[/bold]: {sweep_spec.search.trials} trials of "
        f"{sweep_spec.model.family} on {sweep_spec.data.dataset}, "
        f"{sweep_spec.train.epochs} epochs max, {sweep_spec.search.concurrency} at a time",
    )
    view = ProgressView(err)
    try:
        with view:
            result = run_sweep(sweep_spec, where, on_progress=view.update)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: the sweep is marked interrupted in the catalog")
        raise typer.Exit(130) from None
    _print_result(result, where)


class ProgressView:
    """A live progress line on a terminal; a line per finished trial in a log."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Any = None
        self._done = -1

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            from rich.live import Live

            self._live = Live("starting Ray ...", console=self.console, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, progress: Progress) -> None:
        if self._live is not None:
            self._live.update(progress.line())
        elif progress.done != self._done:
            self._done = progress.done
            self.console.print(progress.line())


def _print_result(result: SweepResult, home: Home) -> None:
    p = result.progress
    best = result.best
    out.print(
        f"sweep [bold]{result.sweep_id}[/bold] {result.state.value} in {result.seconds:.1f} s: "
        f"{p.done} trials ({p.completed} completed, {p.stopped_early} stopped early, "
        f"{p.diverged} diverged, {p.failed} failed), "
        f"{p.epochs} of {p.total * p.max_epochs} epochs trained",
    )
    if best is not None:
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(best.params.items()))
        out.print(f"best {p.metric} = [bold]{best.value:.4f}[/bold]  {params}")
    if result.model is not None:
        out.print(
            f"model: {result.model.name} version {result.model.version}, "
            f"alias {result.model.alias} -> {result.model.uri}",
            highlight=False,
        )
    if result.parent_run_id:
        out.print(
            f"MLflow: experiment {result.experiment_id}, sweep run {result.parent_run_id} "
            f"({home.tracking_uri})",
        )
    out.print(f"details: trialforge sweep show {result.sweep_id}")


@sweep_app.command("list")
@user_errors
def sweep_list(
    home: HomeOption = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
) -> None:
    """Every sweep in the catalog: state, best metric, trials, duration."""
    from trialforge import query

    frame = query.sweeps(_home(home).db_url, limit)
    if frame.empty:
        out.print("no sweeps yet: run one with `trialforge sweep run jobs/cnn_digits.yaml`")
        return
    table = Table("id", "name", "family", "state", "started", "seconds", "best", "trials",
                  "model")
    for row in frame.itertuples():
        table.add_row(
            row.id, row.name, row.family, row.state, f"{row.created_at:%Y-%m-%d %H:%M}",
            _short(row.seconds), f"{row.metric} {_short(row.best_value)}",
            f"{row.trials_completed}+{row.trials_stopped} early/{row.trials_total}",
            row.model_version or "",
        )
    out.print(table)


@sweep_app.command("show")
@user_errors
def sweep_show(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id (or a unique prefix).")],
    home: HomeOption = None,
) -> None:
    """One sweep: its state, ids across Ray/Optuna/MLflow, and its trials."""
    from trialforge import query

    where = _home(home)
    record = query.sweep(where.db_url, sweep_id)
    for label, value in [
        ("id", record.id), ("name", record.name), ("state", record.state),
        ("family", record.family), ("created", record.created_at),
        ("finished", record.finished_at), (f"best {record.metric}", _short(record.best_value)),
        ("model", record.model_version), ("optuna study", record.study_name),
        ("mlflow experiment", record.mlflow_experiment_id),
        ("mlflow sweep run", record.mlflow_parent_run_id),
        ("ray results", record.ray_storage_path), ("error", record.error),
    ]:
        if value not in (None, ""):
            out.print(f"[bold]{label}[/bold]: {value}")
    if record.pareto_front:
        _print_pareto_front(json.loads(record.pareto_front))
    if not record.mlflow_experiment_id:
        return
    _quiet_libraries()
    trials = query.trials(where.tracking_uri, record.mlflow_experiment_id, record.id)
    if trials.empty:
        out.print("no trials recorded")
        return
    metric = f"metrics.{record.metric}"
    params = [c for c in trials.columns if c.startswith("params.") and trials[c].nunique() > 1]
    table = Table("trial", "state", record.metric, *[c.removeprefix("params.") for c in params])
    for _, row in trials.sort_values("name").iterrows():
        table.add_row(
            str(row["name"]), str(row["state"]), _short(row.get(metric)),
            *[_short(row[c]) for c in params],
        )
    out.print(table)


def _print_pareto_front(front: list[dict[str, Any]]) -> None:
    """A multi-objective sweep's trade-offs: no listed trial is beaten on every objective."""
    metrics = list(front[0]["values"]) if front else []
    params = sorted({name for point in front for name in point["params"]})
    table = Table("optuna trial", *metrics, *params, title="Pareto front")
    for point in front:
        table.add_row(str(point["number"]), *[_short(point["values"][m]) for m in metrics],
                      *[_short(point["params"].get(name, "")) for name in params])
    out.print(table)


@model_app.command("list")
@user_errors
def model_list(home: HomeOption = None) -> None:
    """Registered models: versions, aliases and the sweep behind each."""
    _quiet_libraries()
    from trialforge import query

    frame = query.models(_home(home).tracking_uri)
    if frame.empty:
        out.print("no registered models yet: a finished sweep registers its best model")
        return
    table = Table("name", "version", "aliases", "sweep", "metric", "value", "created")
    for row in frame.itertuples():
        table.add_row(row.name, str(row.version), row.aliases, row.sweep_id or "",
                      row.metric or "", _short(row.value), f"{row.created:%Y-%m-%d %H:%M}")
    out.print(table)


@model_app.command("alias")
@user_errors
def model_alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="The version the alias should point at.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion or challenger.")],
    home: HomeOption = None,
) -> None:
    """Point an alias of a registered model at another version."""
    _quiet_libraries()
    from trialforge.registry.aliases import set_alias

    previous = set_alias(_home(home).tracking_uri, name, version, alias)
    was = f" (was version {previous})" if previous else ""
    out.print(f"models:/{name}@{alias} -> version {version}{was}")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("dashboard")
@user_errors
def dashboard(
    home: HomeOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind; the default keeps it on this machine.")
    ] = "127.0.0.1",
    mlflow_ui: Annotated[
        Optional[str],
        typer.Option(envvar="TRIALFORGE_MLFLOW_UI",
                     help="Your MLflow UI's address, for links to runs (default: the "
                     "tracking server when it is one)."),
    ] = None,
) -> None:
    """Compare sweeps and runs in a browser (Streamlit, read-only but for registry aliases)."""
    import socket

    app_file = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
    if not app_file.exists():
        raise TrialforgeError(
            f"the dashboard app is not at {app_file}: it ships in the source tree's "
            "dashboards/ folder; install trialforge from a checkout (pip install -e .)"
        )
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise TrialforgeError(
                f"cannot serve on {address}:{port} ({exc.strerror}): choose another --port"
            ) from None
    where = _home(home)
    env = {**os.environ, "TRIALFORGE_HOME": str(where.root),
           "MLFLOW_TRACKING_URI": where.tracking_uri, "TRIALFORGE_DB": where.db_url}
    if mlflow_ui:
        env["TRIALFORGE_MLFLOW_UI"] = mlflow_ui
    if address not in LOOPBACK:
        err.print(f"[yellow]warning:[/yellow] the dashboard has no login: anyone who can "
                  f"reach {address}:{port} can read every run and move model aliases")
    err.print(f"dashboard on http://{address}:{port} (Ctrl-C stops it)")
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this is a local tool
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # Streamlit takes over this process (and Ctrl-C)


def _short(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _quiet_libraries() -> None:
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="trialforge")


if __name__ == "__main__":  # pragma: no cover
    main()
