"""The epoch loop of one trial, written once for both execution paths.

Read it top to bottom: build data and model, restore the last checkpoint if Ray restarted the
trial, then per epoch train, evaluate, report metrics and a checkpoint. Batches come from
`train.batches`: in memory, a permutation seeded by (seed, epoch), so a resumed trial sees
exactly the batches an uninterrupted one would; streamed, Ray Data's seeded local shuffle.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trialforge.data import DATASET_LAYOUTS, load_dataset
from trialforge.data.dataset import Dataset
from trialforge.figures import confusion_figure
from trialforge.models import InputLayout, build_model, input_layout
from trialforge.tasks import task_metrics
from trialforge.train import hyperparameters
from trialforge.train.batches import Batch, Batches, StreamBatches, TensorBatches
from trialforge.train.compilation import compile_errors, compile_model
from trialforge.train.contract import TrialCheckpoint, TrialState
from trialforge.train.evaluation import LossFn, evaluate, loss_function, parameter_count
from trialforge.train.placement import Placement
from trialforge.train.precision import Precision

if TYPE_CHECKING:
    from trialforge.spec import SweepSpec, TrainConfig
    from trialforge.streaming import StreamedData
    from trialforge.train.session import TrialSession


#: `train.optimizer` -> the optimizer over parameter groups; `weight_decay` is the L2 penalty.
OPTIMIZERS: dict[str, Callable[[list[dict[str, Any]], TrainConfig], torch.optim.Optimizer]] = {
    "adam": lambda groups, t: torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay),
    "adamw": lambda groups, t: torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay),
    "sgd": lambda groups, t: torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum,
                                             weight_decay=t.weight_decay),
}
LRSchedule = Callable[[torch.optim.Optimizer, "TrainConfig"],
                      torch.optim.lr_scheduler.LRScheduler]
#: `train.lr_schedule` -> the schedule (None: a constant rate).
LR_SCHEDULES: dict[str, LRSchedule | None] = {
    "none": None,
    "cosine": lambda optimizer, t: torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=t.epochs),
    "step": lambda optimizer, t: torch.optim.lr_scheduler.StepLR(optimizer, t.step_size, t.gamma),
}


def train_loop(
    spec: SweepSpec,
    session: TrialSession,
    data: Dataset | StreamedData | None = None,
    data_args: dict[str, Any] | None = None,
) -> None:
    """Train one trial of `spec` (its knobs already set), reporting each epoch to `session`.

    `data` is the sweep's dataset when the driver loaded it once for every trial, or its
    stream (`data.stream`); `data_args` go to the model builder besides the dataset's (e.g.
    a transfer backbone).
    """
    torch.manual_seed(spec.seed)
    data = data or trial_data(spec)
    model = build_model(spec.model.family, spec.model.model_dump(exclude={"family"}),
                        data.input_shape, data.num_classes,
                        **data.model_args, **(data_args or {}))
    params = float(parameter_count(model))
    optimizer = make_optimizer(model, spec.train, getattr(spec.model, "backbone_lr", None))
    scheduler = make_lr_schedule(optimizer, spec.train)
    stopper = EarlyStopping(spec.train.patience, spec.search.objective, spec.search.direction)

    first_epoch = 1
    restored = session.restored_checkpoint()
    if restored is not None:
        model.load_state_dict(restored["model"])
    placement = Placement.choose(spec.train, session.device,
                                 data.nbytes if isinstance(data, Dataset) else None)
    model = compile_model(placement.place_model(model), spec.train.compile)
    model = session.prepare_model(model)
    wanted = hyperparameters.asked(optimizer)
    if restored is not None:
        # After the model is on its device: the optimizer's state follows its parameters.
        optimizer.load_state_dict(restored["optimizer"])
        if scheduler is not None and restored["lr_schedule"] is not None:
            scheduler.load_state_dict(restored["lr_schedule"])
        # pbt/pb2: the checkpoint may be another trial's, trained with other knobs.
        hyperparameters.adopt(optimizer, wanted, restored.get("hyperparameters"), scheduler)
        stopper.load_state_dict(restored.get("early_stopping", {}))
        first_epoch = int(restored["epoch"]) + 1
    if report_restored_end(session, restored):
        return
    batches: Batches = (TensorBatches(data, spec, session, placement)
                        if isinstance(data, Dataset)
                        else StreamBatches(data, spec, session, placement))
    loss_fn = loss_function(data.task)
    precision = Precision(spec.train.precision, session.device)
    for epoch in range(first_epoch, spec.train.epochs + 1):
        started = time.perf_counter()
        torch.manual_seed(spec.seed * 100_003 + epoch)  # dropout masks, reproducible on resume
        with compile_errors(spec.train.compile, spec.model.family):
            train_loss = train_epoch(model, optimizer, loss_fn, batches.train(epoch), spec,
                                     session, precision)
        if not math.isfinite(train_loss):
            # Every metric is reported (as NaN): Tune and Optuna expect their objectives.
            unmeasured = dict.fromkeys(task_metrics(data.task), math.nan)
            session.report({**unmeasured, "epoch": epoch, "train_loss": train_loss,
                            "params": params, "epoch_seconds": time.perf_counter() - started},
                           state=TrialState.DIVERGED)
            return
        if scheduler is not None:
            scheduler.step()
        session.sync_buffers(unwrap(model))
        with compile_errors(spec.train.compile, spec.model.family):
            val_metrics, confusion = evaluate(unwrap(model), batches.val(), data.task,
                                              data.num_classes, session)
        metrics = {"epoch": epoch, "train_loss": train_loss, **val_metrics, "params": params,
                   "epoch_seconds": time.perf_counter() - started}
        checkpoint: TrialCheckpoint = {
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "hyperparameters": wanted,
            "lr_schedule": scheduler.state_dict() if scheduler is not None else None,
            "early_stopping": stopper.state_dict(),
            "epoch": epoch,
            # With the spec, enough to rebuild the model (registry.versions).
            "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
            "input_dtype": data.input_dtype,
            "model_args": {**data.model_args, **_descriptive(data_args)},
            "preprocessing": (data.preprocessing.model_dump()
                              if data.preprocessing is not None else None),
        }
        stop = stopper.update(metrics.get(spec.search.objective, math.nan))
        final = epoch == spec.train.epochs or stop
        checkpoint["final_metrics"] = metrics if final else None
        figures = None
        if confusion is not None:  # made on the reporter thread, for a best epoch only
            figures = {"confusion_matrix": functools.partial(
                confusion_figure, confusion.tolist(), data.class_names)}
        session.report(metrics, checkpoint,
                       state=TrialState.COMPLETED if final else TrialState.RUNNING,
                       figures=figures)
        if stop:
            return


def report_restored_end(session: TrialSession, restored: TrialCheckpoint | None) -> bool:
    """Report again the end of a trial restored from its last epoch's checkpoint; True if so.

    The trial had ended, but its driver died before Tune recorded it: Tune restores it, and
    it has nothing left to train.
    """
    final = (restored or {}).get("final_metrics")
    if not final:
        return False
    session.report(dict(final), state=TrialState.COMPLETED)
    return True


class EarlyStopping:
    """Stop a trial whose metric has not improved for `patience` epochs (None: never)."""

    def __init__(self, patience: int | None, metric: str, mode: str) -> None:
        self.patience, self.metric, self.mode = patience, metric, mode
        self.best = math.nan
        self.stale = 0

    def update(self, value: float) -> bool:
        """Record an epoch's value; True when the trial should stop."""
        better = math.isfinite(value) and (
            not math.isfinite(self.best)
            or (value > self.best if self.mode == "max" else value < self.best)
        )
        self.best, self.stale = (value, 0) if better else (self.best, self.stale + 1)
        return self.patience is not None and self.stale >= self.patience

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best = float(state.get("best", math.nan))
        self.stale = int(state.get("stale", 0))


def trial_data(spec: SweepSpec) -> Dataset:
    """The train/val split `spec` trains on, shaped for its model family: never its test
    split (`data.test_fraction`), which only the sweep's driver reads, once."""
    return load_dataset(spec.data, seed=spec.split_seed,
                        layout=trial_layout(spec)).without_test()


def trial_layout(spec: SweepSpec) -> InputLayout:
    """How `spec`'s model family takes its dataset's examples (image, vector, ...)."""
    return input_layout(spec.model.family, DATASET_LAYOUTS[spec.data.dataset])


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    spec: SweepSpec,
    session: TrialSession,
    precision: Precision,
) -> float:
    """One pass over this worker's `batches`; the mean loss over all workers (NaN if
    diverged).

    The L1 penalty (`train.l1`) joins the loss it is minimised with but not the loss
    reported; `train.grad_clip` caps the gradient norm (the exploding-gradient remedy);
    `precision` runs the forward pass under autocast (`train.precision`).
    """
    model.train()
    weights = [p for name, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
    loss_sum = torch.zeros((), device=session.device)
    count = 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = loss_fn(model(x), y).float()
        objective = loss
        if spec.train.l1 > 0:
            objective = loss + spec.train.l1 * sum(w.abs().sum() for w in weights)
        precision.step(objective, optimizer, model, spec.train.grad_clip)
        loss_sum += loss.detach() * len(y)
        count += len(y)
    # Divergence is judged once per epoch on the summed loss, so every worker agrees on it.
    total = torch.stack([loss_sum, torch.tensor(float(count), device=session.device)])
    summed_loss, examples = session.all_reduce_sum(total).tolist()
    return float(summed_loss / examples) if examples else math.nan


def make_optimizer(
    model: nn.Module, train: TrainConfig, backbone_lr: float | None = None
) -> torch.optim.Optimizer:
    """The optimizer the spec names; `weight_decay` is the L2 penalty. A transfer model's
    backbone may learn at its own rate (`backbone_lr`)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": trainable}]
    features = getattr(model, "features", None)
    if backbone_lr is not None and isinstance(features, nn.Module):
        backbone = {id(p) for p in features.parameters()}
        groups = [{"params": [p for p in trainable if id(p) in backbone], "lr": backbone_lr},
                  {"params": [p for p in trainable if id(p) not in backbone]}]
    return OPTIMIZERS[train.optimizer](groups, train)


def make_lr_schedule(
    optimizer: torch.optim.Optimizer, train: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """`cosine` anneals to 0 over the trial's epochs; `step` multiplies by `gamma` every
    `step_size` epochs; stepped once per epoch (`none`: a constant rate)."""
    schedule = LR_SCHEDULES[train.lr_schedule]
    return schedule(optimizer, train) if schedule is not None else None


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (its state dict has no prefix)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def _descriptive(data_args: dict[str, Any] | None) -> dict[str, Any]:
    """The builder arguments a checkpoint keeps: descriptions, not weights."""
    return {k: v for k, v in (data_args or {}).items() if not k.endswith("_weights")}
