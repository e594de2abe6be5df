"""B3 bookkeeping: 200 trials of a trivial one-epoch model, wall time against the ideal.

The ideal is the trials' own compute (their epoch's training and evaluation, as the loop
measures it) divided by the concurrency: what is left is the platform's bookkeeping per
trial (Optuna's ask and tell, Tune's scheduling and actor reuse, the MLflow run, data and
model set-up). Ray is started before timing; the sweep's search phase is timed.

Run: python benchmarks/bookkeeping.py [--trials 200] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import Figure, report
from mlflow.tracking import MlflowClient

from trialforge import parse_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

CONCURRENCY = 2


def sweep(home: Path, trials: int) -> dict[str, float]:
    spec = parse_spec({
        "name": "bookkeeping",
        "model": {"family": "mlp", "depth": 1, "width": 16},
        "train": {"epochs": 1, "batch_size": 256},
        "search": {"trials": trials, "concurrency": CONCURRENCY,
                   "scheduler": {"type": "fifo"},
                   "space": {"lr": {"loguniform": [1e-3, 1e-1]},
                             "width": {"choice": [8, 16, 32]}}},
        "register": {"enabled": False},
    })
    result = run_sweep(spec, resolve_home(home))
    assert result.experiment_id is not None
    client = MlflowClient(resolve_home(home).tracking_uri)
    runs, token = [], None
    while True:
        page = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'",
                                  max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            break
    compute = [run.data.metrics["epoch_seconds"] for run in runs]
    ideal = sum(compute) / CONCURRENCY
    wall = result.phases["search"]
    return {"wall": wall, "ideal": ideal, "ratio": wall / ideal, "trials": len(runs),
            "per_trial_overhead": (wall - ideal) * CONCURRENCY / len(runs),
            "compute_per_trial": statistics.median(compute)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=CONCURRENCY, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="trialforge-b3-") as tmp:
        runs = [sweep(Path(tmp) / str(r), args.trials) for r in range(args.repeats)]
    ray.shutdown()
    assert all(r["trials"] == args.trials for r in runs)
    figures = [
        Figure.of(f"wall time, {args.trials} trials", [r["wall"] for r in runs], "s"),
        Figure.of("ideal: trial compute / concurrency", [r["ideal"] for r in runs], "s"),
        Figure.of("compute of one trial (median)", [r["compute_per_trial"] for r in runs], "s"),
        Figure.of("bookkeeping per trial", [r["per_trial_overhead"] for r in runs], "s"),
        Figure.of("wall / ideal", [r["ratio"] for r in runs], "x", target="<= 1.3",
                  met=statistics.median(r["ratio"] for r in runs) <= 1.3),
    ]
    report("B3-bookkeeping", figures, {"runs": runs})


if __name__ == "__main__":
    main()
