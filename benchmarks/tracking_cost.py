"""B4 tracking: sweeps with MLflow off, on (sqlite) and over HTTP, side by side.

Two sweeps of the demo's CNN: the demo itself (24 trials, TPE + ASHA) and an equal-work one
(8 trials x 12 epochs, FIFO: every trial trains its whole budget, so the three modes train
the same epochs). ASHA's decisions depend on timing, so the demo is also given as seconds per
epoch trained. The HTTP case runs a real `mlflow server` on 127.0.0.1 (one worker, job
execution off). Modes are interleaved, their order rotated each repeat; Ray starts once,
untimed.

Run: python benchmarks/tracking_cost.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import Figure, report

from trialforge import load_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

SPEC = Path(__file__).resolve().parents[1] / "jobs" / "cnn_digits.yaml"


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A local `mlflow server` on a free loopback port, stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "server-artifacts")],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("mlflow server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def sweep(home: Path, track: bool, overrides: list[str],
          tracking_uri: str | None = None) -> dict[str, float]:
    spec = load_spec(SPEC, ["register.enabled=false", *overrides])
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        result = run_sweep(spec, resolve_home(home), track=track)
    finally:
        if tracking_uri:
            os.environ.pop("MLFLOW_TRACKING_URI")
            if previous:
                os.environ["MLFLOW_TRACKING_URI"] = previous
    seconds = result.phases["search"]
    return {"seconds": seconds, "epochs": result.progress.epochs,
            "per_epoch": seconds / result.progress.epochs}


#: The two sweeps: the demo as shipped, and one where every trial trains 12 epochs.
SWEEPS: dict[str, list[str]] = {
    "demo": [], "equal work": ["search.trials=8", "search.scheduler.type=fifo"]}
MODES = ("off", "sqlite", "http")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {
        (name, mode): [] for name in SWEEPS for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="trialforge-b4-") as tmp, \
            mlflow_server(Path(tmp)) as url:
        for repeat in range(args.repeats):
            for name, overrides in SWEEPS.items():
                for mode in MODES[repeat % 3:] + MODES[:repeat % 3]:
                    home = Path(tmp) / f"{name}-{mode}-{repeat}".replace(" ", "-")
                    runs[name, mode].append(sweep(home, mode != "off", overrides,
                                                  url if mode == "http" else None))
    ray.shutdown()

    med = statistics.median
    figures = []
    for (name, mode), values in runs.items():
        figures += [
            Figure.of(f"{name}, MLflow {mode}: sweep", [v["seconds"] for v in values], "s"),
            Figure.of(f"{name}, MLflow {mode}: epochs trained", [v["epochs"] for v in values],
                      ""),
            Figure.of(f"{name}, MLflow {mode}: per epoch trained",
                      [v["per_epoch"] for v in values], "s"),
        ]
    for name in SWEEPS:
        for mode in ("sqlite", "http"):
            slower = (med(v["per_epoch"] for v in runs[name, mode])
                      / med(v["per_epoch"] for v in runs[name, "off"]))
            figures.append(Figure(f"{name}: MLflow {mode} vs off, per epoch", slower, slower,
                                  slower, "x", target="<= 1.03", met=slower <= 1.03))
    report("B4-tracking", figures, {f"{name} / {mode}": values
                                    for (name, mode), values in runs.items()})


if __name__ == "__main__":
    main()
