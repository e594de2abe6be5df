"""Run every benchmark (B0-B7, B2 in two parts) one after the other; each prints its table
and writes JSON to benchmarks/results/. Pass --quick for one repetition each (a smoke run,
not figures).

Run: python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "vs_script.py": ["--pairs", "5"],
    "overhead.py": ["--repeats", "3"],
    "search_efficiency.py": ["--seeds", "10"],
    "search_tables.py": ["--seeds", "10", "--budget", "100"],
    "bookkeeping.py": ["--trials", "200"],
    "tracking_cost.py": ["--repeats", "3"],
    "memory.py": ["--repeats", "1"],
    "startup.py": ["--repeats", "5"],
    "dashboard.py": ["--runs", "1000", "--repeats", "5"],
    "data_scale.py": ["--images", "2000"],
}
QUICK = {
    "vs_script.py": ["--pairs", "1", "--only", "fixed"],
    "overhead.py": ["--repeats", "1"],
    "search_efficiency.py": ["--seeds", "1"],
    "search_tables.py": ["--seeds", "1", "--budget", "20", "--datasets", "naval_propulsion"],
    "bookkeeping.py": ["--trials", "20"],
    "tracking_cost.py": ["--repeats", "1"],
    "memory.py": ["--repeats", "1"],
    "startup.py": ["--repeats", "2"],
    "dashboard.py": ["--runs", "100", "--repeats", "1"],
    "data_scale.py": ["--images", "400", "--repeats", "1"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("only", nargs="*", help="run only these (e.g. overhead.py)")
    args = parser.parse_args()
    plan = QUICK if args.quick else BENCHMARKS
    environment = {
        **os.environ,
        "RAY_AIR_NEW_OUTPUT": "0",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    }
    failed = []
    for script, arguments in plan.items():
        if args.only and script not in args.only:
            continue
        print(f"\n== {script} {' '.join(arguments)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *arguments], cwd=HERE,
                              env=environment, check=False)
        if done.returncode:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
