"""B0: `trialforge sweep run jobs/cnn_digits.yaml` against the plain script it replaces.

Whole processes, alternated (the order flips each pair), each with a fresh home or store:
- the demo end to end, 24 trials x 12 epochs (target: trialforge / script <= 1.0);
- the fixed cost, 1 trial x 1 epoch (target: <= 2x the script).
Both sides are seeded by the pair's number; both report their best val_accuracy.
trialforge copies a new home's MLflow store from its cache (made by the first home on a
machine); `--cold-cache` gives each of its runs an empty cache, as on a new machine.

Run: python benchmarks/vs_script.py [--pairs 5] [--only demo|fixed] [--cold-cache]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import Figure, report

REPO = Path(__file__).resolve().parents[1]
TRIALFORGE = Path(sys.executable).with_name("trialforge")
SCRIPT = Path(__file__).resolve().with_name("plain_script.py")
CASES = {
    "demo": ([], []),
    "fixed": (["search.trials=1", "train.epochs=1"], ["--trials", "1", "--epochs", "1"]),
}
# A user's shell, not the test suite's: no cluster, no other stores.
CLEAN = {k: v for k, v in os.environ.items()
         if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "TRIALFORGE_HOME")}


# Runs one side in a folder with a seed and its arguments: (seconds, best val_accuracy).
Side = Callable[[Path, int, list[str]], tuple[float, float]]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds the process took, start to exit, and its output."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def best_of(output: str) -> float:
    found = re.findall(r"best val_accuracy =?\s*(\d\.\d+)", output)
    return float(found[-1]) if found else float("nan")


def run_trialforge(folder: Path, seed: int, overrides: list[str], cold_cache: bool = False,
                   ) -> tuple[float, float]:
    cache = {"XDG_CACHE_HOME": str(folder / "cache")} if cold_cache else {}
    seconds, output = timed(
        [str(TRIALFORGE), "sweep", "run", "jobs/cnn_digits.yaml", f"seed={seed}", *overrides],
        {**CLEAN, "TRIALFORGE_HOME": str(folder / "home"), **cache})
    return seconds, best_of(output)


def run_script(folder: Path, seed: int, arguments: list[str]) -> tuple[float, float]:
    folder.mkdir(parents=True)
    seconds, output = timed(
        [sys.executable, str(SCRIPT), "--store", str(folder), "--seed", str(seed), *arguments],
        CLEAN)
    return seconds, best_of(output)


def compare(case: str, pairs: int, scratch: Path, cold_cache: bool) -> list[Figure]:
    overrides, arguments = CASES[case]
    platform, script, ratios = [], [], []
    trialforge = functools.partial(run_trialforge, cold_cache=cold_cache)
    for pair in range(pairs):
        sides: list[tuple[str, Side, list[str]]] = [
            ("trialforge", trialforge, overrides), ("script", run_script, arguments)]
        measured = {}
        for name, run, extra in sides if pair % 2 == 0 else sides[::-1]:
            measured[name] = run(scratch / f"{case}-{name}-{pair}", pair, extra)
            print(f"{case} pair {pair} {name}: {measured[name][0]:.1f} s, "
                  f"best {measured[name][1]:.4f}", flush=True)
        platform.append(measured["trialforge"])
        script.append(measured["script"])
        ratios.append(measured["trialforge"][0] / measured["script"][0])
    ratio = statistics.median(ratios)
    target, stretch = (1.0, 0.8) if case == "demo" else (2.0, None)
    label = "demo, 24 trials x 12 epochs" if case == "demo" else "fixed cost, 1 trial x 1 epoch"
    return [
        Figure.of(f"{label}: trialforge", [s for s, _ in platform], "s",
                  note="best " + " / ".join(f"{b:.4f}" for _, b in platform)),
        Figure.of(f"{label}: plain script", [s for s, _ in script], "s",
                  note="best " + " / ".join(f"{b:.4f}" for _, b in script)),
        Figure.of(f"{label}: trialforge / script", ratios, "x", target=f"<= {target}",
                  met=ratio <= target,
                  note=f"stretch {stretch}: {'met' if ratio <= stretch else 'not met'}"
                  if stretch else ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--only", choices=sorted(CASES))
    parser.add_argument("--cold-cache", action="store_true",
                        help="no MLflow store template: every trialforge run migrates its own")
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="trialforge-b0-") as tmp:
        for case in [args.only] if args.only else list(CASES):
            figures += compare(case, args.pairs, Path(tmp), args.cold_cache)
    report("B0-vs-script-cold-cache" if args.cold_cache else "B0-vs-script", figures)


if __name__ == "__main__":
    main()
