"""Shared by the benchmarks: repeated timing, summaries, the results table and JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One measured figure next to its target."""

    name: str
    median: float
    low: float
    high: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @classmethod
    def of(cls, name: str, values: Sequence[float], unit: str, **kwargs: Any) -> Figure:
        return cls(name, statistics.median(values), min(values), max(values), unit, **kwargs)

    def row(self) -> str:
        spread = f"{self.low:.3g}-{self.high:.3g}" if self.low != self.high else ""
        verdict = {True: "met", False: "NOT met", None: ""}[self.met]
        return (f"| {self.name} | {self.median:.3g} {self.unit} | {spread} | {self.target} "
                f"| {verdict} | {self.note} |")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}"


def report(benchmark: str, figures: list[Figure], extra: dict[str, Any] | None = None) -> None:
    """Print a markdown table and write results/<benchmark>.json."""
    print(f"\n### {benchmark}\n")
    print("| figure | median | min-max | target | | note |")
    print("|---|---|---|---|---|---|")
    for figure in figures:
        print(figure.row())
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": benchmark, "machine": machine(),
               "figures": [asdict(f) for f in figures], **(extra or {})}
    (RESULTS / f"{benchmark}.json").write_text(json.dumps(payload, indent=2, default=str))


def git_revision() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).parent)
    return done.stdout.strip()


def python() -> str:
    return sys.executable


def bootstrap_median(values: Sequence[float], resamples: int = 10_000,
                     seed: int = 0) -> tuple[float, float, float]:
    """The median of `values` and its bootstrap 95% interval (SciPy's, percentile method:
    it takes infinite values, a run that never reached its goal)."""
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if len(set(data.tolist())) == 1:  # no spread to resample
        return float(data[0]), float(data[0]), float(data[0])
    with np.errstate(invalid="ignore"):  # its spread estimate, over infinite values
        found = stats.bootstrap((data,), np.median, n_resamples=resamples, method="percentile",
                                random_state=np.random.default_rng(seed), vectorized=True)
    interval = found.confidence_interval
    return float(np.median(data)), float(interval.low), float(interval.high)
