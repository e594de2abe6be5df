"""B1 overhead: one digits-CNN trial through trialforge against a plain PyTorch loop.

Both sides train the same model on the same data, batch and seed for 10 epochs, with the
same CPU budget (one thread: a one-worker trial gets one CPU). Ray starts once, before
either side is timed. Figures:
- steady-state epoch: median wall time between epochs 2..10 (trialforge: between the MLflow
  records of consecutive epochs, so reporting, checkpoints and tracking count);
- whole trial: plain = data + model + 10 epochs; trialforge = Tune's fit for a 1-trial sweep
  (trial actor start, 10 epochs with checkpoints and MLflow, teardown). The sweep's one-time
  store setup and model registration are shown apart.
The 2-worker TorchTrainer path runs the same trial with DDP over 2 workers.

Run: python benchmarks/overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import Figure, report
from mlflow.tracking import MlflowClient
from torch import nn

from trialforge import parse_spec
from trialforge.data import load_dataset
from trialforge.home import resolve_home
from trialforge.models import build_model
from trialforge.search import run_sweep
from trialforge.spec import DataConfig

EPOCHS = 10
MODEL = {"family": "cnn", "conv_blocks": 2, "channels": 16, "fc_width": 64}
TRAIN = {"epochs": EPOCHS, "batch_size": 64, "lr": 0.003}


def plain_loop(
    threads: int, device: str = "cpu", data_config: DataConfig | None = None,
    model_fields: dict[str, Any] = MODEL, train: dict[str, Any] = TRAIN,
) -> tuple[float, list[float]]:
    """What a user writes by hand: the physical limit. Returns (total, epoch times).

    The digits CNN by default; `data_config`, `model_fields` and `train` (epochs, batch_size,
    lr) describe another CNN run (benchmarks/gpu.py)."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    data = load_dataset(data_config or DataConfig(), seed=0, layout="image")
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    torch.manual_seed(0)
    knobs = {k: v for k, v in model_fields.items() if k != "family"}
    model = build_model("cnn", knobs, data.input_shape, data.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train["lr"])
    loss_fn = nn.CrossEntropyLoss()
    epochs = []
    batch = int(train["batch_size"])
    for epoch in range(int(train["epochs"])):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(epoch))
        order = order.to(device)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss_fn(model(x_train[index]), y_train[index]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            (model(x_val).argmax(1) == y_val).float().mean().item()  # .item() waits for the GPU
        epochs.append(time.perf_counter() - began)
    return time.perf_counter() - started, epochs


def trialforge_trials(
    home: Path, workers: int, trials: int, use_gpu: bool = False
) -> list[dict[str, float]]:
    """A sweep of `trials` identical trials one at a time; figures per trial from MLflow.

    The first trial pays the one-time start of its Ray worker (imports of torch, MLflow);
    later ones reuse that actor, as every trial of a real sweep does after the first few.
    """
    return sweep_trial_figures(home, {
        "name": f"overhead-{workers}w", "model": MODEL,
        "train": {**TRAIN, "workers": workers, "use_gpu": use_gpu},
        "search": {"trials": trials, "concurrency": 1, "scheduler": {"type": "fifo"}}})


def sweep_trial_figures(home: Path, spec_fields: dict[str, Any]) -> list[dict[str, float]]:
    """Run the sweep `spec_fields` describes; its trials' figures from MLflow, in the order
    they ended. A trial's whole time is from the end of the one before it to its own end:
    everything one more trial costs (with several at once, read the sweep's `fit` instead).
    """
    spec = parse_spec(spec_fields)
    began = time.time()
    result = run_sweep(spec, resolve_home(home))
    assert result.experiment_id is not None and result.best is not None
    client = MlflowClient(resolve_home(home).tracking_uri)
    runs = client.search_runs([result.experiment_id], "tags.`trialforge.kind` = 'trial'")
    runs.sort(key=lambda run: run.info.end_time)
    previous_end = began + result.phases.get("stores", 0.0) + result.phases["ray"]
    figures = []
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "train_loss")
        stamps = [m.timestamp / 1000 for m in history]
        compute = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_seconds")]
        intervals = [b - a for a, b in itertools.pairwise(stamps)]
        end = run.info.end_time / 1000
        figures.append({
            "whole": end - previous_end,
            "epoch": statistics.median(intervals),
            "epoch_compute": statistics.median(compute[1:]),
            # From the trial's run being opened to its first epoch reported, less that epoch.
            "start": stamps[0] - run.info.start_time / 1000 - compute[0],
            "stores": result.phases.get("stores", 0.0),
            "register": result.phases.get("register", 0.0),
            "search": result.phases.get("search", 0.0),  # the whole sweep's Tune run
        })
        previous_end = end
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=True, logging_level="ERROR", log_to_driver=False)
    plain, plain2 = [], []
    cold, warm, ddp = [], [], []
    with tempfile.TemporaryDirectory(prefix="trialforge-b1-") as tmp:
        plain_loop(1)  # warm this process: a plain script's first torch ops are slower too
        for repeat in range(args.repeats):  # interleaved, so drift hits both sides alike
            plain.append(plain_loop(1))
            first, *rest = trialforge_trials(Path(tmp) / f"one-{repeat}", workers=1, trials=3)
            cold.append(first)
            warm += rest
            plain.append(plain_loop(1))
            plain2.append(plain_loop(2))
            ddp += trialforge_trials(Path(tmp) / f"two-{repeat}", workers=2, trials=1)
    ray.shutdown()

    plain_epoch = [statistics.median(e[1:]) for _, e in plain]
    plain_whole = [total for total, _ in plain]
    plain2_epoch = [statistics.median(e[1:]) for _, e in plain2]
    plain2_whole = [total for total, _ in plain2]
    med = statistics.median
    epoch_ratio = [t["epoch"] / med(plain_epoch) for t in warm]
    whole_ratio = [t["whole"] / med(plain_whole) for t in warm]
    figures = [
        Figure.of("plain loop: epoch (1 thread)", plain_epoch, "s"),
        Figure.of("plain loop: whole trial (data, model, 10 epochs)", plain_whole, "s"),
        Figure.of("trialforge 1 worker: epoch", [t["epoch"] for t in warm], "s"),
        Figure.of("  of which compute in the loop", [t["epoch_compute"] for t in warm], "s"),
        Figure.of("steady-state epoch ratio", epoch_ratio, "x", target="<= 1.05",
                  met=med(epoch_ratio) <= 1.05),
        Figure.of("trialforge 1 worker: whole trial (warm actor)", [t["whole"] for t in warm],
                  "s"),
        Figure.of("whole trial ratio (excl. Ray start)", whole_ratio, "x", target="<= 1.5",
                  met=med(whole_ratio) <= 1.5),
        Figure.of("first trial of a sweep (starts its Ray worker)", [t["whole"] for t in cold],
                  "s", note="one-time: worker process + torch/Ray Tune imports"),
        Figure.of("sweep setup: catalog + MLflow (once per sweep)", [t["stores"] for t in cold],
                  "s"),
        Figure.of("model registration (once per sweep)", [t["register"] for t in cold], "s"),
        Figure.of("plain loop: epoch (2 threads)", plain2_epoch, "s"),
        Figure.of("TorchTrainer 2 workers: epoch", [t["epoch"] for t in ddp], "s"),
        Figure.of("TorchTrainer 2 workers: epoch ratio vs 2-thread loop",
                  [t["epoch"] / med(plain2_epoch) for t in ddp], "x"),
        Figure.of("TorchTrainer 2 workers: whole trial ratio",
                  [t["whole"] / med(plain2_whole) for t in ddp], "x"),
        Figure.of("  of which worker-group start", [t["start"] for t in ddp], "s"),
        Figure.of("  per-epoch report barrier + controller poll + checkpoint",
                  [t["epoch"] - t["epoch_compute"] for t in ddp], "s"),
    ]
    report("B1-overhead", figures, {"cold": cold, "warm": warm, "ddp": ddp})


if __name__ == "__main__":
    main()
