"""The epoch loop of one trial, written once for both execution paths (DESIGN.md 4b).

Read it top to bottom: build data and model, restore the last checkpoint if Ray restarted the
trial, then per epoch train, evaluate, report metrics and a checkpoint. Batches come from a
permutation seeded by (seed, epoch), so a resumed trial sees exactly the batches an
uninterrupted one would. With several workers each takes every `world_size`-th example.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch
from torch import nn

from trialforge.data import Dataset, load_dataset
from trialforge.models import build_model, input_layout

if TYPE_CHECKING:
    from trialforge.spec import SweepSpec, TrainConfig
    from trialforge.train.session import TrialSession


def train_loop(spec: SweepSpec, session: TrialSession, data: Dataset | None = None) -> None:
    """Train one trial of `spec` (its knobs already set), reporting each epoch to `session`.

    `data` is the sweep's dataset when the driver loaded it once for every trial.
    """
    torch.manual_seed(spec.seed)
    family = spec.model.family
    data = data or trial_data(spec)
    knobs = spec.model.model_dump(exclude={"family"})
    model = build_model(family, knobs, data.input_shape, data.num_classes)
    optimizer = make_optimizer(model, spec.train)

    first_epoch = 1
    restored = session.restored_checkpoint()
    if restored is not None:
        model.load_state_dict(restored["model"])
        optimizer.load_state_dict(restored["optimizer"])
        first_epoch = int(restored["epoch"]) + 1

    model = session.prepare_model(model)
    data = _to_device(data, session.device)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(first_epoch, spec.train.epochs + 1):
        started = time.perf_counter()
        torch.manual_seed(spec.seed * 100_003 + epoch)  # dropout masks, reproducible on resume
        train_loss = train_epoch(model, optimizer, loss_fn, data, spec, epoch, session)
        if not math.isfinite(train_loss):
            nan = math.nan
            session.report(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": nan, "val_accuracy": nan,
                 "epoch_seconds": time.perf_counter() - started},
                state="diverged",
            )
            return
        session.sync_buffers(_unwrap(model))
        val_loss, val_accuracy = evaluate(_unwrap(model), loss_fn, data, session)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "epoch_seconds": time.perf_counter() - started,
        }
        checkpoint = {
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "input_shape": list(data.input_shape),  # with the spec, enough to rebuild the model
            "num_classes": data.num_classes,
        }
        final = epoch == spec.train.epochs
        session.report(metrics, checkpoint, state="completed" if final else "running")


def trial_data(spec: SweepSpec) -> Dataset:
    """The train/val split `spec` trains on, shaped for its model family."""
    return load_dataset(
        spec.data.dataset,
        val_fraction=spec.data.val_fraction,
        seed=spec.seed,
        layout=input_layout(spec.model.family),
    )


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: Dataset,
    spec: SweepSpec,
    epoch: int,
    session: TrialSession,
) -> float:
    """One pass over this worker's shard; the mean loss over all workers (NaN if diverged)."""
    model.train()
    order = torch.randperm(len(data.y_train), generator=_generator(spec.seed, epoch))
    shard_size = len(order) // session.world_size  # equal shards: DDP needs equal step counts
    shard = order[session.rank :: session.world_size][:shard_size].to(session.device)
    batch_size = max(1, spec.train.batch_size // session.world_size)  # batch_size is global
    loss_sum = torch.zeros((), device=session.device)
    for start in range(0, shard_size, batch_size):
        session.check_stopped()
        index = shard[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(data.x_train[index]), data.y_train[index])
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(index)
    # Divergence is judged once per epoch on the summed loss, so every worker agrees on it.
    total = torch.stack([loss_sum, torch.tensor(float(shard_size), device=session.device)])
    summed_loss, count = session.all_reduce_sum(total).tolist()
    return float(summed_loss / count) if count else math.nan


@torch.no_grad()
def evaluate(
    model: nn.Module, loss_fn: nn.Module, data: Dataset, session: TrialSession
) -> tuple[float, float]:
    """Validation loss and accuracy over the whole validation set (shards summed)."""
    model.eval()
    x = data.x_val[session.rank :: session.world_size]
    y = data.y_val[session.rank :: session.world_size]
    logits = model(x)
    sums = torch.stack([
        loss_fn(logits, y) * len(y),
        (logits.argmax(dim=1) == y).sum().to(logits.dtype),
        torch.tensor(float(len(y)), device=logits.device),
    ])
    loss_sum, correct, count = session.all_reduce_sum(sums).tolist()
    return loss_sum / count, correct / count


def make_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the spec names; `weight_decay` is the L2 penalty."""
    params = model.parameters()
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum,
                               weight_decay=train.weight_decay)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (its state dict has no prefix)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def _to_device(data: Dataset, device: torch.device) -> Dataset:
    if device.type == "cpu":
        return data
    return Dataset(
        name=data.name,
        x_train=data.x_train.to(device),
        y_train=data.y_train.to(device),
        x_val=data.x_val.to(device),
        y_val=data.y_val.to(device),
        num_classes=data.num_classes,
    )
