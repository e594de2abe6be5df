"""B6 startup: `trialforge --help`, and `sweep run` until the first trial trains.

The first trial "trains" when its first epoch began: the time its first result reached the
driver (the epoch's MLflow timestamp) less the epoch's own seconds; measured from the moment
the CLI process is started.

Run: python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure, report
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
TRIALFORGE = Path(sys.executable).with_name("trialforge")


def help_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([str(TRIALFORGE), "--help"], check=True, capture_output=True)
    return time.perf_counter() - started


def first_trial_seconds(home: Path) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "TRIALFORGE_DB")}
    environment["TRIALFORGE_HOME"] = str(home)
    started = time.time()
    subprocess.run([str(TRIALFORGE), "sweep", "run", "jobs/cnn_digits.yaml", "search.trials=2",
                    "train.epochs=1", "register.enabled=false"], cwd=REPO, env=environment,
                   check=True, capture_output=True)
    finished = time.time()
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`trialforge.kind` = 'trial'"
    )
    first = min(
        (m.timestamp / 1000 - m.value for run in runs
         for m in client.get_metric_history(run.info.run_id, "epoch_seconds") if m.step == 1),
        default=float("nan"))
    return {"first_trial": first - started, "whole": finished - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    helps = [help_seconds() for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory(prefix="trialforge-b6-") as tmp:
        firsts = [first_trial_seconds(Path(tmp) / str(r)) for r in range(max(1, args.repeats // 2))]
    report("B6-startup", [
        Figure.of("trialforge --help", helps, "s", target="<= 1", met=max(helps) <= 1.0),
        Figure.of("sweep run -> first trial training", [f["first_trial"] for f in firsts], "s",
                  target="<= 6",
                  met=statistics.median(f["first_trial"] for f in firsts) <= 6.0,
                  note="Ray start, stores, Tune, worker start with its imports"),
        Figure.of("sweep run, 2 trials x 1 epoch, to exit", [f["whole"] for f in firsts], "s"),
    ], {"help": helps, "first_trial": firsts})


if __name__ == "__main__":
    main()
