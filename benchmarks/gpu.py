"""GPU checks on one CUDA machine, each trialforge figure next to its anchor in one run.

Data: a generated 32x32, 10-class, 50,000-image set (`--images`), in an `.npz` file that a
spec names, so trialforge's own loader reads it. Model: the CNN family with 3 blocks of
64-256 channels and batchnorm. Every trial is one worker on one GPU, 3 epochs; an epoch's time
is the median over epochs 2-3 (epoch 1 pays cuDNN's autotuning and, with `compile`, the
compiler).

1. B1 on GPU: a plain PyTorch loop against one in-process trialforge trial (both fp32,
   contiguous memory, the data on the GPU): epoch ratio, target <= 1.05.
2. Four trials at `gpu_fraction=0.25`, all at once, against the same four one at a time:
   throughput ratio (images trained per second of the sweep), target >= 2.5.
3. `precision=bf16` and `compile=true` against fp32: epoch speed-up, bf16 target >= 1.5.
   Also reported: `channels_last` against contiguous, and batches from pinned host memory
   (`data_on_device=false`) against the data on the GPU.
4. A 2-worker DDP trial (one GPU each, NCCL) against a 1-worker trial: epoch ratio. Needs two
   GPUs; with one, the row says so.

Run: benchmarks/gpu_check.sh (installs what is missing), or python benchmarks/gpu.py.
`--smoke` runs the same steps on the CPU with 2,000 images: a check of the script itself,
whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import Figure, report
from overhead import plain_loop, sweep_trial_figures

from trialforge.spec import DataConfig

EPOCHS = 3
MODEL = {"family": "cnn", "conv_blocks": 3, "channels": 64, "fc_width": 256, "batchnorm": True}
TRAIN = {"epochs": EPOCHS, "batch_size": 256, "lr": 0.002}
FIFO = {"scheduler": {"type": "fifo"}, "try_spec_first": True}


def write_images(path: Path, count: int, seed: int = 0) -> Path:
    """`count` 3x32x32 images of 10 classes: stripes of a class's own frequency, angle and
    colour, at a random phase, under noise (a task a CNN learns, not a lookup)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    grid = np.stack(np.meshgrid(np.arange(32), np.arange(32), indexing="ij")).astype(np.float32)
    angle = labels * np.pi / 10
    frequency = 0.08 + 0.02 * (labels % 5)
    waves = (np.cos(angle)[:, None, None] * grid[0] + np.sin(angle)[:, None, None] * grid[1])
    phase = rng.uniform(0, 2 * np.pi, count)[:, None, None]
    stripes = np.sin(2 * np.pi * frequency[:, None, None] * waves + phase)
    colour = rng.uniform(0.3, 1.0, (10, 3))[labels]
    images = colour[:, :, None, None] * stripes[:, None] + rng.normal(0, 0.5, (count, 3, 32, 32))
    np.savez(path, x=images.astype(np.float16), y=labels)
    return path


def sweep(home: Path, data_path: Path, train: dict[str, Any], trials: int = 1,
          concurrency: int = 1) -> list[dict[str, float]]:
    """A FIFO sweep of `trials` identical trials with `train`'s knobs on the generated images."""
    return sweep_trial_figures(home, {
        "name": "gpu-check", "model": MODEL,
        "data": {"dataset": "npz", "path": str(data_path)},
        "train": {**TRAIN, "channels_last": False, "use_gpu": torch.cuda.is_available(),
                  **train},
        "search": {**FIFO, "trials": trials, "concurrency": concurrency},
        "register": {"enabled": False}})


def epoch(trials: list[dict[str, float]]) -> float:
    """The median steady-state epoch (train + validation, as the trial measured it)."""
    return statistics.median(t["epoch_compute"] for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--smoke", action="store_true", help="on the CPU, 2,000 images")
    args = parser.parse_args()
    import ray

    if not (torch.cuda.is_available() or args.smoke):
        raise SystemExit("no CUDA GPU is visible to torch")
    images = 2_000 if args.smoke else args.images
    device = "cpu" if args.smoke else "cuda"
    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name() if gpus else "CPU smoke run"
    ray.init(logging_level=logging.ERROR, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="trialforge-gpu-") as tmp:
        root = Path(tmp)
        data = write_images(root / "images.npz", images)
        print(f"{images} images written; {gpus} GPU ({name})", flush=True)
        # What a user writes by hand on a GPU: the data on the GPU, fp32.
        plain_config = DataConfig(dataset="npz", path=str(data))
        plain_loop(1, device, plain_config, MODEL, TRAIN)  # warm CUDA and cuDNN, as a script's
        plain = [statistics.median(plain_loop(1, device, plain_config, MODEL, TRAIN)[1][1:])
                 for _ in range(2)]
        runs: dict[str, list[dict[str, float]]] = {}
        variants: dict[str, dict[str, Any]] = {
            "fp32": {}, "bf16": {"precision": "bf16"}, "compile": {"compile": True},
            "channels_last": {"channels_last": True}, "pinned": {"data_on_device": False}}
        for name, train in variants.items():
            runs[name] = sweep(root / name, data, train)
            print(f"{name}: epoch {epoch(runs[name]):.3f} s", flush=True)
        one_at_a_time = sweep(root / "serial", data, {}, trials=4, concurrency=1)
        shared = sweep(root / "shared", data, {"gpu_fraction": 0.25}, trials=4, concurrency=4)
        ddp = sweep(root / "ddp", data, {"workers": 2}) if gpus >= 2 else []
    ray.shutdown()

    fp32 = epoch(runs["fp32"])
    b1 = fp32 / statistics.median(plain)
    sharing = one_at_a_time[0]["search"] / shared[0]["search"]  # the same work: 4 x 3 epochs
    bf16 = fp32 / epoch(runs["bf16"])
    figures = [
        Figure.of("plain loop on the GPU: epoch", plain, "s"),
        Figure.of("trialforge in-process trial: epoch", [t["epoch_compute"] for t in runs["fp32"]],
                  "s"),
        Figure("1. B1 GPU epoch ratio (trialforge / plain)", b1, b1, b1, "x", "<= 1.05",
               b1 <= 1.05),
        Figure("2. 4 trials at gpu_fraction=0.25: throughput vs one at a time", sharing,
               sharing, sharing, "x", ">= 2.5", sharing >= 2.5,
               f"sweep {shared[0]['search']:.1f} s vs {one_at_a_time[0]['search']:.1f} s"),
        Figure("3. bf16 speed-up over fp32 (epoch)", bf16, bf16, bf16, "x", ">= 1.5",
               bf16 >= 1.5),
        *(Figure(f"3. {name} speed-up over fp32 (epoch)", value, value, value, "x")
          for name in ("compile", "channels_last", "pinned")
          for value in [fp32 / epoch(runs[name])]),
    ]
    if ddp:
        ratio = epoch(ddp) / fp32
        figures.append(Figure("4. DDP 2 workers / 1 worker (epoch)", ratio, ratio, ratio, "x"))
    else:
        figures.append(Figure("4. DDP 2 workers / 1 worker (epoch)", float("nan"), float("nan"),
                              float("nan"), "x", note=f"not measured: needs 2 GPUs, {gpus} here"))
    report("gpu-check-smoke" if args.smoke else "gpu-check", figures, {
        "device": name, "gpus": gpus, "runs": runs, "shared": shared, "serial": one_at_a_time,
        "ddp": ddp, "images": images})


if __name__ == "__main__":
    main()
