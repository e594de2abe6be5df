"""B2 search efficiency: time until a sweep first reaches val_accuracy >= 0.975.

trialforge's default (Optuna TPE + ASHA) against random search without early stopping, on
the demo spec's space (digits CNN, 24 trials, 2 at a time, 12 epochs), 5 seeds each. Time
runs from the start of the search (Ray already up) to the first epoch at the target, read
from MLflow; also the epochs trained until then and in the whole sweep.

Run: python benchmarks/search_efficiency.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import Figure, report
from mlflow.tracking import MlflowClient

from trialforge import load_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

TARGET = 0.975
SPEC = Path(__file__).resolve().parents[1] / "jobs" / "cnn_digits.yaml"
STRATEGIES = {
    "tpe+asha": [],
    "random+fifo": ["search.sampler=random", "search.scheduler.type=fifo",
                    "search.try_spec_first=false"],
}


def time_to_target(home: Path, seed: int, overrides: list[str]) -> dict[str, float]:
    spec = load_spec(SPEC, [f"seed={seed}", "register.enabled=false", *overrides])
    result = run_sweep(spec, resolve_home(home))
    client = MlflowClient(resolve_home(home).tracking_uri)
    assert result.experiment_id is not None
    runs = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'")
    history = [m for run in runs for m in client.get_metric_history(run.info.run_id,
                                                                   "val_accuracy")]
    search_start = min(run.info.start_time for run in runs) / 1000
    reached = sorted(m.timestamp / 1000 for m in history if m.value >= TARGET)
    seconds = reached[0] - search_start if reached else float("inf")
    epochs = sum(1 for m in history if m.timestamp / 1000 <= search_start + seconds)
    return {"seconds": seconds, "epochs_to_target": epochs, "epochs": len(history),
            "sweep_seconds": result.phases["search"], "best": result.best.value if result.best
            else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    outcomes: dict[str, list[dict[str, float]]] = {name: [] for name in STRATEGIES}
    with tempfile.TemporaryDirectory(prefix="trialforge-b2-") as tmp:
        for seed in range(args.seeds):
            for name, overrides in STRATEGIES.items():
                home = Path(tmp) / f"{name}-{seed}"
                outcomes[name].append(time_to_target(home, seed, overrides))
    ray.shutdown()

    tpe, rnd = outcomes["tpe+asha"], outcomes["random+fifo"]
    med = statistics.median
    ratio = med(t["seconds"] for t in tpe) / med(t["seconds"] for t in rnd)
    figures = []
    for name, runs in outcomes.items():
        figures += [
            Figure.of(f"{name}: time to {TARGET}", [r["seconds"] for r in runs], "s",
                      note=f"reached in {sum(r['seconds'] < float('inf') for r in runs)}"
                           f"/{len(runs)} seeds"),
            Figure.of(f"{name}: epochs trained to {TARGET}",
                      [r["epochs_to_target"] for r in runs], "epochs"),
            Figure.of(f"{name}: whole sweep", [r["sweep_seconds"] for r in runs], "s"),
            Figure.of(f"{name}: epochs in the sweep", [r["epochs"] for r in runs], "epochs"),
            Figure.of(f"{name}: best val_accuracy", [r["best"] for r in runs], ""),
        ]
    figures.append(Figure("time-to-target ratio (tpe+asha / random)", ratio, ratio, ratio, "x",
                          target="<= 0.33", met=ratio <= 1 / 3))
    report("B2-search-efficiency", figures, outcomes)


if __name__ == "__main__":
    main()
