"""Data larger than memory: a streamed trial's memory stays flat as the data grows.

A generated image folder (jobs/data/make_images.py: shapes and textures, read at 64 px) at 1x
and 4x the images, each trained for 2 epochs by one in-process trial of a small CNN, streamed
(`data.stream: true`, Ray Data) and, as the anchor, read into memory (the default path).
Figures per run: the peak private memory (USS, sampled every 0.2 s) of the trial process, the
peak of its resident memory (`memory_mb`, each epoch; it also counts the pages of Ray's
shared object store the process has read, which the object store, not the trial, holds),
and its throughput in images per second (training and validation images over the epoch's
time, the first epoch left out). Target: the streamed trial's peak grows by less than 10%
from 1x to 4x.

Run: python benchmarks/data_scale.py [--images 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import threading
from pathlib import Path

import psutil
from _common import Figure, report
from mlflow.tracking import MlflowClient

from trialforge import parse_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs" / "data"))
from make_images import CLASSES, write_images

EPOCHS = 2


class PeakPrivateMemory(threading.Thread):
    """The largest private memory (USS) of any trial process (`ray::ImplicitFunc`) seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for process in psutil.process_iter(["cmdline"]):
                if "ray::ImplicitFunc" in " ".join(process.info["cmdline"] or []):
                    with contextlib.suppress(psutil.Error):
                        uss = process.memory_full_info().uss / 2**20
                        self.peak_mib = max(self.peak_mib, uss)


def trial(home: Path, images: Path, stream: bool) -> tuple[float, float, float]:
    """One trial over `images`: peak private and resident memory in MiB, and images per
    second after epoch 1."""
    sampler = PeakPrivateMemory()
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
    return sampler.peak_mib, max(memory), count / min(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="the 1x folder's images")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, logging_level=logging.ERROR, log_to_driver=False)
    figures: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="trialforge-scale-") as tmp:
        for scale in (1, 4):
            per_class = args.images * scale // len(CLASSES)
            folder = write_images(Path(tmp) / f"x{scale}", per_class=per_class)
            for stream in (True, False):
                name = f"{'streamed' if stream else 'in memory'} {scale}x"
                figures[name] = trial(Path(tmp) / name.replace(" ", "-"), folder, stream)
                private, resident, speed = figures[name]
                print(f"{name}: peak private {private:.0f} MiB, resident {resident:.0f} MiB, "
                      f"{speed:.0f} images/s", flush=True)
    ray.shutdown()
    rows = []
    for index, (what, unit) in enumerate([("peak private memory (USS)", "MiB"),
                                          ("peak resident memory", "MiB"),
                                          ("throughput", "images/s")]):
        rows += [Figure(f"{name}: {what}", values[index], values[index], values[index], unit)
                 for name, values in figures.items()]
    for index, what in enumerate(["private", "resident"]):
        growth = 100 * (figures["streamed 4x"][index] / figures["streamed 1x"][index] - 1)
        anchor = 100 * (figures["in memory 4x"][index] / figures["in memory 1x"][index] - 1)
        rows += [Figure(f"streamed: peak {what} memory growth 1x -> 4x", growth, growth, growth,
                        "%", "< 10" if what == "private" else "", growth < 10
                        if what == "private" else None),
                 Figure(f"in memory (anchor): peak {what} memory growth 1x -> 4x", anchor,
                        anchor, anchor, "%")]
    report("data-scale", rows, {"images_1x": args.images, "epochs": EPOCHS})


if __name__ == "__main__":
    main()
