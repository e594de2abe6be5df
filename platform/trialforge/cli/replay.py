"""`trialforge replay RUN_ID`: retrain a trial from its record and check every epoch."""

from __future__ import annotations

from typing import Annotated

import typer

from trialforge.cli.common import HomeOption, err, home_of, out, quiet_libraries, user_errors


@user_errors
def replay(
    run_id: Annotated[str, typer.Argument(help="The MLflow run id of a trial.")],
    home: HomeOption = None,
) -> None:
    """Retrain a trial from its MLflow record (its spec, seeds and data), deterministically
    on the CPU, and check that every epoch's metrics match exactly (exit 1 at the first that
    does not; 2 when the data changed since)."""
    from trialforge.replay import replay_run

    quiet_libraries()
    done = replay_run(run_id, home_of(home).tracking_uri, progress=err.print)
    out.print(f"run {done.run_id}: all {done.epochs} epochs match exactly "
              f"({', '.join(done.metrics)})")
