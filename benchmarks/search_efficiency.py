"""B2, part 1: time to a hard target, trialforge's default search against random search.

The digits CNN over a wide space (learning rate over five decades, SGD or Adam, weight decay,
batch size, dropout, batchnorm, activation, width), 8 epochs a trial, 32 trials, 2 at a
time, the same for both arms:
- trialforge's default: TPE (multivariate, constant liar) and ASHA (grace 1, factor 3);
- random search without early stopping: `search.sampler=random`, `scheduler.type=fifo`.
Neither trains the spec's own point first (`try_spec_first=false`): the search is measured,
not the spec. Tracking is on, as a user runs it.

The target is set from the random arm itself: the 80th percentile of its trials' best
val_accuracy over all seeds, so at most 20% of random configurations ever reach it (the 90th
and 95th percentiles are reported too: rarer targets). Each
seed's time to target runs from the search's first trial start to the first epoch at or
above it (MLflow's timestamps); a sweep that never reaches it counts its whole search time
(censored, a bound in the random arm's favour when trialforge's is censored). Reported: the
median of the per-seed ratios (trialforge / random) with a bootstrap 95% interval, and the
best value so far as a function of time, median over seeds.

Run: python benchmarks/search_efficiency.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import Figure, bootstrap_median, report
from mlflow.tracking import MlflowClient

from trialforge import parse_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

#: Targets: the quantiles of random configurations' best values. The headline is 0.8 (at
#: most 20% of random configurations reach it); rarer ones are reported beside it.
QUANTILES = (0.8, 0.9, 0.95)
SPEC: dict[str, Any] = {
    "name": "b2", "model": {"family": "cnn", "conv_blocks": 2, "channels": 16, "fc_width": 64},
    "data": {"dataset": "digits"}, "train": {"epochs": 8},
    "search": {"metric": "val_accuracy", "trials": 32, "concurrency": 2,
               "try_spec_first": False, "space": {
                   "train.lr": {"loguniform": [1e-5, 1.0]},
                   "train.optimizer": {"choice": ["sgd", "adam"]},
                   "train.weight_decay": {"loguniform": [1e-6, 0.1]},
                   "train.batch_size": {"choice": [16, 64, 256]},
                   "model.dropout": {"uniform": [0.0, 0.8]},
                   "model.batchnorm": {"choice": [True, False]},
                   "model.activation": {"choice": ["relu", "tanh", "sigmoid"]},
                   "model.channels": {"choice": [4, 8, 16, 32]}}},
    "register": {"enabled": False},
}
ARMS = {
    "trialforge (tpe+asha)": [],
    "random (no early stopping)": ["search.sampler=random", "search.scheduler.type=fifo"],
}
CURVE_AT = (1, 2, 3, 5, 8, 12, 16, 20, 25)  # seconds into the search


def sweep(home: Path, seed: int, overrides: list[str]) -> dict[str, Any]:
    """One sweep's epochs as (seconds into the search, val_accuracy, trial), and each
    trial's best value."""
    spec = parse_spec(SPEC, [f"seed={seed}", *overrides])
    result = run_sweep(spec, resolve_home(home))
    client = MlflowClient(resolve_home(home).tracking_uri)
    assert result.experiment_id is not None
    runs = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'")
    start = min(run.info.start_time for run in runs) / 1000
    epochs, bests = [], []
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        epochs += [(m.timestamp / 1000 - start, m.value) for m in history]
        bests.append(max((m.value for m in history), default=0.0))
    return {"epochs": sorted(epochs), "trial_bests": bests,
            "search_seconds": result.phases["search"]}


def time_to(target: float, outcome: dict[str, Any]) -> tuple[float, bool]:
    """Seconds until an epoch first reached `target`, and whether it did (else the whole
    search's time, censored)."""
    reached = [seconds for seconds, value in outcome["epochs"] if value >= target]
    return (reached[0], True) if reached else (outcome["search_seconds"], False)


def best_by(outcome: dict[str, Any], seconds: float) -> float:
    return max((value for at, value in outcome["epochs"] if at <= seconds), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    outcomes: dict[str, list[dict[str, Any]]] = {name: [] for name in ARMS}
    with tempfile.TemporaryDirectory(prefix="trialforge-b2-") as tmp:
        for seed in range(args.seeds):
            for name, overrides in ARMS.items():  # alternated: drifts hit both arms
                outcomes[name].append(sweep(Path(tmp) / f"{seed}-{len(outcomes[name])}-"
                                            f"{name.split()[0]}", seed, overrides))
                print(f"seed {seed} {name}: {outcomes[name][-1]['search_seconds']:.0f} s",
                      flush=True)
    ray.shutdown()

    random_arm = outcomes[list(ARMS)[1]]
    random_bests = [best for outcome in random_arm for best in outcome["trial_bests"]]
    figures, ratios = [], {}
    for quantile in QUANTILES:
        target = float(np.quantile(random_bests, quantile))
        share = sum(best >= target for best in random_bests) / len(random_bests)
        times = {name: [time_to(target, outcome) for outcome in runs]
                 for name, runs in outcomes.items()}
        ratios[quantile] = [a / b for (a, _), (b, _) in zip(*times.values(), strict=True)]
        median, low, high = bootstrap_median(ratios[quantile])
        figures.append(Figure(f"target {target:.4f}: the {quantile:.0%} quantile of random "
                              "configurations' best", target, target, target, "",
                              note=f"{share:.0%} of {len(random_bests)} random configurations "
                                   "reach it"))
        for name, spans in times.items():
            reached = sum(done for _, done in spans)
            figures.append(Figure.of(f"{name}: time to {target:.4f}", [s for s, _ in spans], "s",
                                     note=f"reached in {reached}/{len(spans)} seeds"))
        headline = quantile == QUANTILES[0]
        figures.append(Figure(f"time-to-{target:.4f} ratio, trialforge / random (median of "
                              "seeds)", median, low, high, "x",
                              target="<= 0.33" if headline else "",
                              met=high <= 1 / 3 if headline else None,
                              note="bootstrap 95% interval" + ("; met when the whole interval "
                                                               "is" if headline else "")))
    for name in ARMS:
        figures.append(Figure.of(f"{name}: whole search",
                                 [o["search_seconds"] for o in outcomes[name]], "s"))
    print("\n| seconds | " + " | ".join(ARMS) + " |\n|---|" + "---|" * len(ARMS))
    for at in CURVE_AT:
        cells = [f"{statistics.median(best_by(o, at) for o in runs):.4f}"
                 for runs in outcomes.values()]
        print(f"| {at} | " + " | ".join(cells) + " |")
    report("B2-search-efficiency", figures, {"ratios": ratios, "outcomes": outcomes})


if __name__ == "__main__":
    main()
