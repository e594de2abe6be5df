"""B3 bookkeeping: 200 trials of a trivial one-epoch model, against the ideal and the anchors.

The ideal is the trials' own compute (their epoch's training and evaluation, as the loop
measures it) divided by the concurrency: what is left is the bookkeeping per trial (Optuna's
ask and tell, Tune's scheduling and actor reuse, the MLflow run, data and model set-up). The
same 200 trials also run on two anchors, in the same Ray instance: plain Ray Tune (random
search, no storage) and plain Tune with `OptunaSearch` on sqlite. Ray is started before
timing; trialforge's search phase and the anchors' `Tuner.fit()` are timed.

Run: python benchmarks/bookkeeping.py [--trials 200] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
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


def anchor(home: Path, trials: int, optuna_on_sqlite: bool) -> dict[str, float]:
    """The same trials as a user would run them on plain Ray Tune."""
    import numpy as np
    import torch
    from ray import tune
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32))
    y = torch.from_numpy(digits.target)

    def trainable(config: dict[str, float], x: torch.Tensor, y: torch.Tensor) -> None:
        started = time.perf_counter()
        width = int(config["width"])
        model = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(),
                                    torch.nn.Linear(width, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
        for batch in torch.randperm(1437).split(256):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = (model(x[1437:]).argmax(1) == y[1437:]).float().mean().item()
        tune.report({"val_accuracy": accuracy, "epoch_seconds": time.perf_counter() - started})

    space = {"lr": tune.loguniform(1e-3, 1e-1), "width": tune.choice([8, 16, 32])}
    searcher = None
    if optuna_on_sqlite:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(storage=optuna.storages.RDBStorage(f"sqlite:///{home}.db"),
                                study_name="anchor")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, x=x, y=y), {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", search_alg=searcher,
                                    num_samples=trials, max_concurrent_trials=CONCURRENCY,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(home), verbose=0),
    )
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    compute = [result.metrics["epoch_seconds"] for result in results]
    ideal = sum(compute) / CONCURRENCY
    return {"wall": wall, "ideal": ideal, "ratio": wall / ideal, "trials": len(compute),
            "per_trial_overhead": (wall - ideal) * CONCURRENCY / len(compute)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=CONCURRENCY, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="trialforge-b3-") as tmp:
        runs, tunes, optunas = [], [], []
        for r in range(args.repeats):
            runs.append(sweep(Path(tmp) / str(r), args.trials))
            tunes.append(anchor(Path(tmp) / f"tune-{r}", args.trials, optuna_on_sqlite=False))
            optunas.append(anchor(Path(tmp) / f"optuna-{r}", args.trials, optuna_on_sqlite=True))
    ray.shutdown()
    assert all(r["trials"] == args.trials for r in runs + tunes + optunas)
    ours = statistics.median(r["per_trial_overhead"] for r in runs)
    stack = statistics.median(r["per_trial_overhead"] for r in optunas)
    figures = [
        Figure.of(f"trialforge: wall time, {args.trials} trials", [r["wall"] for r in runs], "s"),
        Figure.of("trialforge: compute of one trial (median)",
                  [r["compute_per_trial"] for r in runs], "s"),
        Figure.of("plain Tune, random search: wall time", [r["wall"] for r in tunes], "s"),
        Figure.of("plain Tune + OptunaSearch on sqlite: wall time",
                  [r["wall"] for r in optunas], "s"),
        Figure.of("trialforge: bookkeeping per trial", [r["per_trial_overhead"] for r in runs],
                  "s", target="<= plain Tune + Optuna's", met=ours <= stack,
                  note="with the catalog, MLflow runs, checkpoints and journal"),
        Figure.of("plain Tune, random search: bookkeeping per trial",
                  [r["per_trial_overhead"] for r in tunes], "s"),
        Figure.of("plain Tune + OptunaSearch on sqlite: bookkeeping per trial",
                  [r["per_trial_overhead"] for r in optunas], "s"),
        Figure.of("trialforge: wall / ideal", [r["ratio"] for r in runs], "x"),
        Figure.of("plain Tune + OptunaSearch on sqlite: wall / ideal",
                  [r["ratio"] for r in optunas], "x"),
    ]
    report("B3-bookkeeping", figures, {"runs": runs, "tune": tunes, "tune_optuna": optunas})


if __name__ == "__main__":
    main()
