"""B5 memory: peak PSS of the whole process tree while the demo sweep runs from the CLI.

PSS (proportional set size) counts shared pages once across processes, so summing it over
the CLI, Ray's daemons and every worker is the tree's real footprint. Sampled every 0.2 s.

Run: python benchmarks/memory.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import Figure, report

REPO = Path(__file__).resolve().parents[1]
TRIALFORGE = Path(sys.executable).with_name("trialforge")
LIMIT_GB = 2.5


def tree_pss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_full_info().pss
    return total


def peak_of_demo(home: Path) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "TRIALFORGE_DB")}
    environment["TRIALFORGE_HOME"] = str(home)
    started = time.monotonic()
    cli = subprocess.Popen([str(TRIALFORGE), "sweep", "run", "jobs/cnn_digits.yaml"], cwd=REPO,
                           env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(cli.pid)
    peak = processes = 0
    while cli.poll() is None:
        try:
            pss = tree_pss(root)
            if pss > peak:
                peak, processes = pss, len(root.children(recursive=True)) + 1
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    assert cli.returncode == 0, "the demo sweep failed"
    return {"peak_gb": peak / 2**30, "processes": processes,
            "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trialforge-b5-") as tmp:
        runs = [peak_of_demo(Path(tmp) / str(r)) for r in range(args.repeats)]
    peaks = [r["peak_gb"] for r in runs]
    report("B5-memory", [
        Figure.of("peak PSS, process tree, demo sweep", peaks, "GB", target=f"<= {LIMIT_GB}",
                  met=max(peaks) <= LIMIT_GB),
        Figure.of("processes in the tree at the peak", [r["processes"] for r in runs], ""),
        Figure.of("demo sweep wall time (CLI, incl. Ray start)", [r["seconds"] for r in runs],
                  "s"),
    ], {"runs": runs})


if __name__ == "__main__":
    main()
