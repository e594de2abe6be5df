"""`trialforge model ...` and `trialforge dashboard`: the registry, and runs in a browser."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from trialforge.cli.common import HomeOption, err, home_of, out, quiet_libraries, short, user_errors
from trialforge.errors import TrialforgeError

NO_MODELS = "no registered models yet: a finished sweep registers its best model"

model_app = typer.Typer(help="Models in the MLflow Model Registry.", no_args_is_help=True)


@model_app.command("list")
@user_errors
def model_list(home: HomeOption = None) -> None:
    """Registered models: versions, aliases and the sweep behind each."""
    from trialforge.home import sqlite_file

    tracking_uri = home_of(home).tracking_uri
    store = sqlite_file(tracking_uri)
    if store is not None and not store.exists():  # reading would create an empty store
        out.print(NO_MODELS)
        return
    quiet_libraries()
    from trialforge import query

    frame = query.models(tracking_uri)
    if frame.empty:
        out.print(NO_MODELS)
        return
    table = Table("name", "version", "aliases", "sweep", "metric", "value", "created")
    for row in frame.itertuples():
        table.add_row(row.name, str(row.version), row.aliases, row.sweep_id or "",
                      row.metric or "", short(row.value), f"{row.created:%Y-%m-%d %H:%M}")
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
    quiet_libraries()
    from trialforge.registry.aliases import set_alias

    previous = set_alias(home_of(home).tracking_uri, name, version, alias)
    was = f" (was version {previous})" if previous else ""
    out.print(f"models:/{name}@{alias} -> version {version}{was}")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


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

    from trialforge.cli.examples import shipped

    # The app ships inside the package (trialforge/dashboards; dashboards/ in a checkout).
    folder = os.environ.get("TRIALFORGE_DASHBOARDS") or shipped("dashboards")
    app_file = Path(folder) / "app.py"
    if not app_file.exists():
        raise TrialforgeError(
            f"the dashboard app is not at {app_file}: reinstall trialforge, or set "
            "TRIALFORGE_DASHBOARDS to a copy of its dashboards/ folder"
        )
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise TrialforgeError(
                f"cannot serve on {address}:{port} ({exc.strerror}): choose another --port"
            ) from None
    where = home_of(home)
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


