"""Data larger than memory: a streamed trial's memory stays flat as the data grows.

A generated image folder (jobs/data/make_images.py: shapes and textures, read at 64 px) at 1x
and 4x the images, each trained for 2 epochs by one in-process trial of a small CNN, streamed
(`data.stream: true`, Ray Data; `--repeats` runs a scale, alternated) and, as the anchor,
read into memory (the default path, one run a scale). Figures per run, sampled every 0.05 s:
the peak private memory of the trial process, its own and apart from it the pages of Ray's
object store it mapped (blocks it read: the store holds them, within its cap), and the peak
of Ray's object store use; the peak of its resident memory (`memory_mb`, each epoch, which
counts those object-store pages too); and its throughput in images per second (training and
validation images over the epoch's time, the first epoch left out). Target: the streamed
trial's own peak (median of its runs) grows by less than 10% from 1x to 4x.

Run: python benchmarks/data_scale.py [--images 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import psutil
from _common import Figure, report
from mlflow.tracking import MlflowClient

from trialforge import parse_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs" / "data"))
from make_images import CLASSES, write_images

EPOCHS = 2


class PeakMemory(threading.Thread):
    """Peaks, in MiB, sampled every 0.05 s: the private memory of any trial process
    (`ray::ImplicitFunc`), split in two, its own (heap, stacks, libraries) and the pages of
    Ray's object store it mapped (the blocks it read; the store holds and reuses them), and
    what the object store holds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.own_mib = self.object_store_mib = self.store_used_mib = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        from ray._private.internal_api import memory_summary  # no public API says this

        while not self.done.wait(0.05):
            used = re.search(r"Plasma memory usage (\d+) MiB", memory_summary(stats_only=True))
            self.store_used_mib = max(self.store_used_mib, float(used[1]) if used else 0.0)
            for process in psutil.process_iter(["cmdline"]):
                if "ray::ImplicitFunc" in " ".join(process.info["cmdline"] or []):
                    with contextlib.suppress(psutil.Error, OSError):
                        own, store = _private_pages(process.pid)
                        self.own_mib = max(self.own_mib, own)
                        self.object_store_mib = max(self.object_store_mib, store)


def _private_pages(pid: int) -> tuple[float, float]:
    """MiB of `pid`'s private pages: outside and inside Ray's object store (plasma)."""
    own = store = 0.0
    in_store = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if not line[:1].isupper():  # a mapping's header: address range, ..., path
            in_store = "plasma" in line
        elif line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib = int(line.split()[1])
            own, store = (own, store + kib) if in_store else (own + kib, store)
    return own / 1024, store / 1024


class Measured(NamedTuple):
    """One trial's figures: peak private memory (its own, and object-store pages) and
    resident memory in MiB, and images per second after epoch 1."""

    own_mib: float
    object_store_mib: float
    store_used_mib: float
    resident_mib: float
    images_per_s: float


FIGURES = [("peak private memory, own (USS less object-store pages)", "MiB"),
           ("peak private object-store pages", "MiB"),
           ("peak object store use (all of Ray)", "MiB"),
           ("peak resident memory (memory_mb)", "MiB"),
           ("throughput", "images/s")]


def trial(home: Path, images: Path, stream: bool) -> Measured:
    """One trial of 2 epochs over `images`, streamed or read into memory."""
    sampler = PeakMemory()
    sampler.start()
    spec = parse_spec({
        "name": "data-scale", "model": {"family": "cnn", "channels": 16},
        "data": {"dataset": "images", "path": str(images), "image_size": 64, "stream": stream},
        "train": {"epochs": EPOCHS, "batch_size": 64},
        "search": {"trials": 1, "concurrency": 1, "scheduler": {"type": "fifo"}},
        "register": {"enabled": False}})
    result = run_sweep(spec, resolve_home(home))
    sampler.done.set()
    assert result.experiment_id is not None
    client = MlflowClient(resolve_home(home).tracking_uri)
    (run,) = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'")
    memory = [m.value for m in client.get_metric_history(run.info.run_id, "memory_mb")]
    seconds = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_seconds")]
    count = sum(1 for _ in images.rglob("*.png"))
    return Measured(sampler.own_mib, sampler.object_store_mib, sampler.store_used_mib, max(memory),
                    count / min(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="the 1x folder's images")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each streamed trial")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, logging_level=logging.ERROR, log_to_driver=False)
    runs: dict[str, list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="trialforge-scale-") as tmp:
        folders = {scale: write_images(Path(tmp) / f"x{scale}",
                                       per_class=args.images * scale // len(CLASSES))
                   for scale in (1, 4)}
        # Streamed runs alternate between the scales (the host drifts); the in-memory
        # anchor runs once a scale.
        plan = [(scale, True) for _ in range(args.repeats) for scale in (1, 4)]
        for index, (scale, stream) in enumerate([*plan, (1, False), (4, False)]):
            name = f"{'streamed' if stream else 'in memory'} {scale}x"
            measured = trial(Path(tmp) / f"run-{index}", folders[scale], stream)
            runs.setdefault(name, []).append(measured)
            print(f"{name}: {measured}", flush=True)
    ray.shutdown()
    rows = [Figure.of(f"{name}: {what}", [run[index] for run in measured], unit)
            for index, (what, unit) in enumerate(FIGURES) for name, measured in runs.items()]
    def growth(mode: str, index: int) -> float:
        """Percent growth 1x -> 4x of the runs' median figure `index`."""
        median = [statistics.median(run[index] for run in runs[f"{mode} {scale}x"])
                  for scale in (1, 4)]
        return 100 * (median[1] / max(1.0, median[0]) - 1)

    for index, (what, _) in enumerate(FIGURES[:4]):
        target = index == 0  # the trial's own memory; the store's pages are the store's
        streamed = growth("streamed", index)
        rows += [Figure.of(f"streamed: {what} growth 1x -> 4x (medians)", [streamed], "%",
                           target="< 10" if target else "",
                           met=streamed < 10 if target else None),
                 Figure.of(f"in memory (anchor): {what} growth 1x -> 4x",
                           [growth("in memory", index)], "%")]
    report("data-scale", rows, {"images_1x": args.images, "epochs": EPOCHS,
                                "repeats": args.repeats})


if __name__ == "__main__":
    main()
