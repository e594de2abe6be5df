"""Data larger than memory: a streamed trial's memory stays flat as the data grows.

A generated image folder (jobs/data/make_images.py: shapes and textures, read at 64 px) at 1x
and 4x the images, each trained for 2 epochs by one in-process trial of a small CNN, streamed
(`data.stream: true`, Ray Data) and, as the anchor, read into memory (the default path).
Figures per run, from the trial's own MLflow metrics: the peak resident memory of the trial
process over its epochs (`memory_mb`) and its throughput in images per second (training and
validation images over the epoch's time, the first epoch left out). Target: the streamed
trial's peak grows by less than 10% from 1x to 4x.

Run: python benchmarks/data_scale.py [--images 2000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from _common import Figure, report
from mlflow.tracking import MlflowClient

from trialforge import parse_spec
from trialforge.home import resolve_home
from trialforge.search import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs" / "data"))
from make_images import CLASSES, write_images

EPOCHS = 2


def trial(home: Path, images: Path, stream: bool) -> tuple[float, float]:
    """One trial over `images`: (peak memory in MiB, images per second after epoch 1)."""
    spec = parse_spec({
        "name": "data-scale", "model": {"family": "cnn", "channels": 16},
        "data": {"dataset": "images", "path": str(images), "image_size": 64, "stream": stream},
        "train": {"epochs": EPOCHS, "batch_size": 64},
        "search": {"trials": 1, "concurrency": 1, "scheduler": {"type": "fifo"}},
        "register": {"enabled": False}})
    result = run_sweep(spec, resolve_home(home))
    assert result.experiment_id is not None
    client = MlflowClient(resolve_home(home).tracking_uri)
    (run,) = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'")
    memory = [m.value for m in client.get_metric_history(run.info.run_id, "memory_mb")]
    seconds = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_seconds")]
    count = sum(1 for _ in images.rglob("*.png"))
    return max(memory), count / min(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="the 1x folder's images")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, logging_level=logging.ERROR, log_to_driver=False)
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="trialforge-scale-") as tmp:
        for scale in (1, 4):
            per_class = args.images * scale // len(CLASSES)
            folder = write_images(Path(tmp) / f"x{scale}", per_class=per_class)
            for stream in (True, False):
                name = f"{'streamed' if stream else 'in memory'} {scale}x"
                figures[name] = trial(Path(tmp) / name.replace(" ", "-"), folder, stream)
                print(f"{name}: peak {figures[name][0]:.0f} MiB, {figures[name][1]:.0f} "
                      "images/s", flush=True)
    ray.shutdown()
    growth = figures["streamed 4x"][0] / figures["streamed 1x"][0] - 1
    anchor = figures["in memory 4x"][0] / figures["in memory 1x"][0] - 1
    rows = [Figure(f"{name}: peak trial memory", memory, memory, memory, "MiB")
            for name, (memory, _) in figures.items()]
    rows += [Figure(f"{name}: throughput", speed, speed, speed, "images/s")
             for name, (_, speed) in figures.items()]
    rows += [
        Figure("streamed: peak memory growth 1x -> 4x", 100 * growth, 100 * growth,
               100 * growth, "%", "< 10", growth < 0.10),
        Figure("in memory (anchor): peak memory growth 1x -> 4x", 100 * anchor, 100 * anchor,
               100 * anchor, "%"),
    ]
    report("data-scale", rows, {"images_1x": args.images, "epochs": EPOCHS})


if __name__ == "__main__":
    main()
