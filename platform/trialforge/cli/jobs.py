"""`trialforge job ...`: a sweep submitted to a Ray cluster as a Ray job, and its state."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from trialforge.cli.common import HomeOption, err, home_of, out, user_errors
from trialforge.errors import NotFoundError, TrialforgeError
from trialforge.home import redact

if TYPE_CHECKING:
    from trialforge.catalog import Catalog, JobRecord
    from trialforge.cluster import JobClient

job_app = typer.Typer(help="Sweeps on a Ray cluster (the Ray Jobs API).", no_args_is_help=True)

ClusterOption = Annotated[
    str,
    typer.Option("--cluster", envvar="RAY_API_SERVER_ADDRESS",
                 help="The cluster's dashboard address, e.g. http://127.0.0.1:8265."),
]


@job_app.command("submit")
@user_errors
def job_submit(
    spec: Annotated[Path, typer.Argument(help="The sweep spec (YAML), inside this folder.")],
    cluster: ClusterOption,
    overrides: Annotated[
        Optional[list[str]], typer.Argument(help="Spec overrides as key=value.")
    ] = None,
    home: HomeOption = None,
    job_env: Annotated[
        Optional[list[str]],
        typer.Option("--job-env", help="KEY=VALUE the job sees instead of this machine's "
                     "value, e.g. MLFLOW_TRACKING_URI=http://mlflow:5000 inside the cluster."),
    ] = None,
) -> None:
    """Run a sweep on a Ray cluster as a Ray job, from this folder.

    The folder is the job's working directory; the stores come from MLFLOW_TRACKING_URI and
    TRIALFORGE_DB, services both this machine and the cluster reach.
    """
    from trialforge.catalog import JobRecord, new_sweep_id, utcnow
    from trialforge.cluster import submission
    from trialforge.spec import load_spec
    from trialforge.spec.gpus import require_gpus

    sweep_spec = load_spec(spec, overrides or [])  # bad input never reaches the cluster
    where = home_of(home)
    stores = {**_shared_stores(), **_pairs(job_env or [])}
    sweep_id = new_sweep_id()
    job = submission(spec, overrides or [], sweep_id, stores)
    client = _client(cluster)  # an unreachable cluster or a refused token stops here
    if (resources := client.resources()) is not None:
        require_gpus(sweep_spec.train, resources, cluster, "add GPU nodes to the cluster")
    catalog = _catalog(where.db_url)
    try:
        job_id = client.submit(f"trialforge-{sweep_id}", job)
        catalog.add_job(JobRecord(
            id=job_id, cluster=cluster, sweep_id=sweep_id, spec_name=sweep_spec.name,
            entrypoint=job.entrypoint, state="PENDING", submitted_at=utcnow(),
        ))
    finally:
        catalog.close()
    out.print(f"job [bold]{job_id}[/bold] submitted to {cluster}: sweep {sweep_id} "
              f"({sweep_spec.name})")
    out.print(f"follow it: trialforge job logs {job_id} --follow")
    out.print("its state: trialforge job list")


@job_app.command("list")
@user_errors
def job_list(home: HomeOption = None) -> None:
    """Submitted jobs, with their live state from each cluster."""
    from trialforge.catalog import catalog_exists

    where = home_of(home)
    if not catalog_exists(where.db_url):
        out.print("no jobs yet: submit one with `trialforge job submit SPEC --cluster URL`")
        return
    catalog = _catalog(where.db_url)
    try:
        jobs = list(catalog.list_jobs())
        unreachable: set[str] = set()
        for job in jobs:
            if job.cluster not in unreachable and job.state not in _terminal():
                try:
                    job = _refresh(catalog, job)
                except TrialforgeError:
                    unreachable.add(job.cluster)
        jobs = list(catalog.list_jobs())
    finally:
        catalog.close()
    if not jobs:
        out.print("no jobs yet: submit one with `trialforge job submit SPEC --cluster URL`")
        return
    table = Table("job", "sweep", "spec", "cluster", "state", "submitted", "message")
    for job in jobs:
        state = job.state + (" (cluster unreachable)" if job.cluster in unreachable else "")
        table.add_row(job.id, job.sweep_id, job.spec_name, job.cluster, state,
                      f"{job.submitted_at:%Y-%m-%d %H:%M}", (job.message or "")[:80])
    out.print(table)


@job_app.command("logs")
@user_errors
def job_logs(
    job_id: Annotated[str, typer.Argument(help="Job id, a unique prefix, or its sweep id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the job ends.")] = False,
    home: HomeOption = None,
) -> None:
    """The job's output (the sweep's progress); with --follow, exit 0 only if it succeeded."""
    catalog = _existing_catalog(home_of(home).db_url, job_id)
    try:
        job = catalog.get_job(job_id)
        client = _client(job.cluster)
        if not follow:
            out.out(client.logs(job.id), end="")
            return
        for chunk in client.follow(job.id):
            out.out(chunk, end="")
        job = _refresh(catalog, job)
    finally:
        catalog.close()
    err.print(f"job {job.id} {job.state}" + (f": {job.message}" if job.message else ""))
    if job.state != "SUCCEEDED":
        raise typer.Exit(1)


@job_app.command("stop")
@user_errors
def job_stop(
    job_id: Annotated[str, typer.Argument(help="Job id, a unique prefix, or its sweep id.")],
    home: HomeOption = None,
) -> None:
    """Stop a running job (Ray sends SIGTERM, then SIGKILL) and record it as stopped."""
    catalog = _existing_catalog(home_of(home).db_url, job_id)
    try:
        job = catalog.get_job(job_id)
        _client(job.cluster).stop(job.id)
        job = _refresh(catalog, job)
    finally:
        catalog.close()
    out.print(f"job {job.id} {job.state}")


def _shared_stores() -> dict[str, str]:
    """The stores the job writes to, from this environment: they must be shared services."""
    from trialforge.cluster.jobs import STORE_VARIABLES

    missing = [name for name in ("MLFLOW_TRACKING_URI", "TRIALFORGE_DB")
               if not os.environ.get(name)]
    if missing:
        raise TrialforgeError(
            f"a cluster job needs shared stores; set {' and '.join(missing)}: the MLflow "
            "server (http://...) and a database both you and the cluster reach "
            "(postgresql://...; sqlite:////shared/path only on one machine)"
        )
    return {name: os.environ[name] for name in STORE_VARIABLES if os.environ.get(name)}


def _pairs(words: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise TrialforgeError(f"--job-env takes KEY=VALUE, KEY a variable name (got {word!r}), "
                                  "e.g. MLFLOW_TRACKING_URI=http://mlflow:5000")
        pairs[key] = value
    return pairs


def _existing_catalog(db_url: str, job_id: str) -> Catalog:
    """The catalog a job was recorded in; none yet (a sqlite file not there) is an unknown
    job, not a new empty file."""
    from trialforge.catalog import catalog_exists

    if not catalog_exists(db_url):
        raise NotFoundError(f"no job {job_id!r}: no job was submitted with catalog "
                            f"{redact(db_url)}; `trialforge job list` shows them")
    return _catalog(db_url)


def _catalog(db_url: str) -> Catalog:
    from trialforge.catalog import Catalog

    return Catalog(db_url)


def _client(cluster: str) -> JobClient:
    from trialforge.cluster import JobClient

    # Ray's client logs each file it packs and each socket it closes: not the user's business.
    logging.getLogger("ray").setLevel(logging.WARNING)
    return JobClient(cluster)


def _terminal() -> tuple[str, ...]:
    from trialforge.cluster.jobs import TERMINAL

    return TERMINAL


def _refresh(catalog: Catalog, job: JobRecord) -> JobRecord:
    """Record the job's state as its cluster reports it now."""
    from trialforge.catalog import utcnow
    state, message = _client(job.cluster).status(job.id)
    finished = utcnow() if state in _terminal() and job.finished_at is None else job.finished_at
    return catalog.update_job(job.id, state=state, message=message, finished_at=finished)
