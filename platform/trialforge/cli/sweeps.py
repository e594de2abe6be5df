"""`trialforge sweep ...`: run a sweep, list and show sweeps."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from trialforge.cli.common import (
    HomeOption,
    err,
    home_of,
    out,
    quiet_libraries,
    short,
    user_errors,
)

if TYPE_CHECKING:
    from trialforge.home import Home
    from trialforge.search.progress import Progress
    from trialforge.search.sweep import SweepResult

sweep_app = typer.Typer(help="Run and inspect sweeps.", no_args_is_help=True)


@sweep_app.command("run")
@user_errors
def sweep_run(
    spec: Annotated[Path, typer.Argument(help="The sweep spec (YAML).")],
    overrides: Annotated[
        Optional[list[str]],
        typer.Argument(help="Spec overrides as key=value, e.g. train.epochs=3 search.trials=4."),
    ] = None,
    home: HomeOption = None,
    sweep_id: Annotated[
        Optional[str],
        typer.Option(envvar="TRIALFORGE_SWEEP_ID",
                     help="Use this sweep id (a cluster job gets the one its submission "
                     "recorded)."),
    ] = None,
) -> None:
    """Run a sweep: Ray Tune + Optuna over the spec's space, trials tracked in MLflow."""
    from trialforge.spec import load_spec

    # Like `python -m`, find a user's own builder (`family: mynets:tiny`) in the current folder.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    sweep_spec = load_spec(spec, overrides or [])  # invalid input stops here, nothing written
    if not sweep_spec.reads_user_inputs():  # those are checked before Ray starts
        from trialforge.search.runtime import start_ray_soon

        start_ray_soon(sweep_spec)  # Ray comes up while the driver imports the rest
    quiet_libraries()
    from trialforge.search import run_sweep

    where = home_of(home)
    err.print(
        f"sweep [bold]{sweep_spec.name}[/bold]: {sweep_spec.search.trials} trials of "
        f"{sweep_spec.model.family} on {sweep_spec.data.dataset}, "
        f"{sweep_spec.train.epochs} epochs max, {sweep_spec.search.concurrency} at a time",
    )
    result = _with_progress(
        lambda view: run_sweep(sweep_spec, where, on_progress=view, sweep_id=sweep_id))
    _print_result(result, where)


@sweep_app.command("resume")
@user_errors
def sweep_resume(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id (or a unique prefix).")],
    home: HomeOption = None,
) -> None:
    """Finish a sweep whose driver died: trials go on from their checkpoints, in the same
    MLflow runs and Optuna study, with the scheduler's decisions kept."""
    quiet_libraries()
    from trialforge.search import NothingToResumeError, resume_sweep

    where = home_of(home)
    err.print(f"resuming sweep [bold]{sweep_id}[/bold]")
    try:
        result = _with_progress(lambda view: resume_sweep(sweep_id, where, on_progress=view))
    except NothingToResumeError as exc:
        out.print(str(exc))
        return
    _print_result(result, where)


def _with_progress(drive: Callable[[Callable[[Progress], None]], SweepResult]) -> SweepResult:
    """Drive a sweep with a live progress view; Ctrl-C or SIGTERM ends it as interrupted."""
    # `trialforge job stop` (Ray's stop_job) sends SIGTERM: end the way Ctrl-C does, so the
    # catalog and MLflow record an interrupted sweep rather than a killed one.
    signal.signal(signal.SIGTERM, _interrupt)
    view = ProgressView(err)
    try:
        with view:
            return drive(view.update)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: the sweep is marked interrupted in the catalog")
        raise typer.Exit(130) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
        params = ", ".join(f"{k}={short(v)}" for k, v in sorted(best.params.items()))
        out.print(f"best {p.metric} = [bold]{best.value:.4f}[/bold]  {params}")
    if result.stop_reason:
        out.print(f"the search stopped early: {result.stop_reason}", highlight=False)
    if result.confirmed:
        mean, low, high = result.confirmed[0].interval
        out.print(f"confirmed over {len(result.confirmed[0].values)} new seeds: {p.metric} "
                  f"mean {mean:.4f}, 95% interval [{low:.4f}, {high:.4f}] (config "
                  f"{result.confirmed[0].config_id})")
    if result.test:
        scores = ", ".join(f"{name} = {value:.4f}" for name, value in result.test.items())
        out.print(f"champion on the test split (scored once): {scores}")
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

    frame = query.sweeps(home_of(home).db_url, limit)
    if frame.empty:
        out.print("no sweeps yet: run one with `trialforge sweep run jobs/cnn_digits.yaml`")
        return
    table = Table("id", "name", "family", "state", "started", "seconds", "best", "trials",
                  "model")
    for row in frame.itertuples():
        table.add_row(
            row.id, row.name, row.family, row.state, f"{row.created_at:%Y-%m-%d %H:%M}",
            short(row.seconds), f"{row.metric} {short(row.best_value)}",
            f"{row.trials_completed}+{row.trials_stopped} early/{row.trials_total}",
            short(row.model_version),
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

    where = home_of(home)
    record = query.sweep(where.db_url, sweep_id)
    for label, value in [
        ("id", record.id), ("name", record.name), ("state", record.state),
        ("family", record.family), ("created", record.created_at),
        ("finished", record.finished_at), (f"best {record.metric}", short(record.best_value)),
        (f"test {record.metric} (champion, scored once)", short(record.test_value)),
        ("stopped early", record.stop_reason),
        ("warm start", _warm_start_line(record.warm_start)),
        ("model", record.model_version), ("optuna study", record.study_name),
        ("mlflow experiment", record.mlflow_experiment_id),
        ("mlflow sweep run", record.mlflow_parent_run_id),
        ("ray results", record.ray_storage_path), ("error", record.error),
    ]:
        if value not in (None, ""):
            out.print(f"[bold]{label}[/bold]: {value}")
    if record.pareto_front:
        _print_pareto_front(json.loads(record.pareto_front))
    if record.confirmed:
        _print_confirmed(json.loads(record.confirmed), record.metric)
    elif record.state == "finished":
        out.print(f"[dim]the best {record.metric} is one trial's, of a single seed: add "
                  "search.confirm to retrain the top configurations over new seeds[/dim]")
    failed = [end for end in query.trial_ends(where.db_url, record.id) if end.failure]
    if failed:
        table = Table("trial", "failure", "epochs", "reason", title="Failed trials")
        for end in failed:
            table.add_row(end.trial_id, end.failure, str(end.epochs), end.reason or "")
        out.print(table)
    if not record.mlflow_experiment_id:
        return
    quiet_libraries()
    trials = query.trials(where.tracking_uri, record.mlflow_experiment_id, record.id)
    if trials.empty:
        out.print("no trials recorded")
        return
    # Each trial's score: its objective at its best epoch (the checkpoint kept).
    score = f"metrics.best_{record.metric}"
    params = [c for c in trials.columns if c.startswith("params.") and trials[c].nunique() > 1]
    # What only some sweeps have: warm-start origins, constraints, pbt/pb2 exploits.
    extras = [column for column in ("origin", "feasible") if trials[column].notna().any()]
    extras += ["exploits"] if trials["exploits"].any() else []
    table = Table("trial", "stage", "config", "state", f"best {record.metric}", "at epoch",
                  *extras, *[c.removeprefix("params.") for c in params])
    for _, row in trials.sort_values(["stage", "name"], na_position="first").iterrows():
        table.add_row(
            str(row["name"]), str(row["stage"]), str(row["config_id"]), str(row["state"]),
            short(row.get(score)), short(row["best_epoch"]),
            *[str(row[column]) if row[column] is not None else "" for column in extras],
            *[short(row[c]) for c in params],
        )
    out.print(table)


def _warm_start_line(summary: str | None) -> str | None:
    """`search.warm_start` in a line: the trials added from where, those evaluated first,
    and those skipped, by reason."""
    if not summary:
        return None
    warm = json.loads(summary)
    sources = ", ".join(f"{name} ({sweep_id})" for sweep_id, name in warm["sources"].items())
    skipped = sum(warm["skipped"].values())
    reasons = "; ".join(f"{count}: {reason}" for reason, count in warm["skipped"].items())
    return (f"{warm['added']} trials from {sources}, the best {warm['first']} evaluated "
            f"first; {skipped} skipped" + (f" ({reasons})" if reasons else ""))


def _print_confirmed(entries: list[dict[str, Any]], metric: str) -> None:
    """The confirm stage: each configuration's mean over its new seeds, with a 95% interval
    (Student's t); the champion is the first."""
    table = Table("config", f"mean {metric}", "95% interval", "seeds", "params",
                  title="Confirmed over new seeds (the champion: best mean)")
    for entry in entries:
        params = ", ".join(f"{k}={short(v)}" for k, v in sorted(entry["params"].items()))
        table.add_row(entry["config_id"], short(entry["mean"]),
                      f"[{short(entry['low'])}, {short(entry['high'])}]", str(entry["seeds"]),
                      params)
    out.print(table)


def _print_pareto_front(front: list[dict[str, Any]]) -> None:
    """A multi-objective sweep's trade-offs: no listed trial is beaten on every objective."""
    metrics = list(front[0]["values"]) if front else []
    params = sorted({name for point in front for name in point["params"]})
    table = Table("optuna trial", *metrics, *params, title="Pareto front")
    for point in front:
        table.add_row(str(point["number"]), *[short(point["values"][m]) for m in metrics],
                      *[short(point["params"].get(name, "")) for name in params])
    out.print(table)


