"""Each task's loss and validation metrics, summed over DDP workers before they are divided.

Every worker evaluates its shard; sums (a confusion matrix, squared errors, token losses) are
all-reduced, so the metrics are those of the whole validation set on any number of workers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional

from trialforge.tasks import Task
from trialforge.train.placement import EVAL_BATCH

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.train.placement import Placement
    from trialforge.train.session import TrialSession

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(task: Task) -> LossFn:
    """Cross-entropy for classes and next tokens, mean squared error for regression."""
    if task == "regression":
        return lambda output, target: functional.mse_loss(output.squeeze(-1), target)
    if task == "language_model":
        return lambda logits, target: functional.cross_entropy(logits.flatten(0, 1),
                                                               target.flatten())
    if task == "classification":
        return functional.cross_entropy
    raise ValueError(f"the epoch loop does not train {task!r} tasks")


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, session: TrialSession, placement: Placement
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Validation metrics of `data.task`, and the confusion matrix of a classifier
    (rows: true class, columns: predicted)."""
    model.eval()
    x = data.x_val[session.rank :: session.world_size]
    y = placement.batch(data.y_val[session.rank :: session.world_size], slice(None))
    started = time.perf_counter()
    output = torch.cat([model(placement.batch(x, slice(start, start + EVAL_BATCH)))
                        for start in range(0, len(x), EVAL_BATCH)])
    latency_us = (time.perf_counter() - started) / max(1, len(x)) * 1e6
    metrics: dict[str, float] = {"latency_us": latency_us}
    confusion = None
    if data.task == "classification":
        classes = data.num_classes
        loss_sum = functional.cross_entropy(output, y, reduction="sum")
        cells = torch.bincount(y * classes + output.argmax(dim=1), minlength=classes**2)
        sums = session.all_reduce_sum(torch.cat([loss_sum.reshape(1), cells.to(output.dtype)]))
        confusion = sums[1:].reshape(classes, classes).round().long().cpu()
        metrics |= {"val_loss": sums[0].item() / max(1, int(confusion.sum())),
                    **classification_metrics(confusion)}
    elif data.task == "regression":
        error = output.squeeze(-1) - y
        sums = session.all_reduce_sum(torch.stack([
            (error**2).sum(), error.abs().sum(), torch.tensor(float(len(y)), device=y.device)
        ]))
        squared, absolute, count = sums.tolist()
        metrics |= {"val_loss": squared / count, "val_rmse": math.sqrt(squared / count),
                    "val_mae": absolute / count}
    elif data.task == "language_model":
        loss_sum = functional.cross_entropy(output.flatten(0, 1), y.flatten(), reduction="sum")
        sums = session.all_reduce_sum(torch.stack([
            loss_sum, torch.tensor(float(y.numel()), device=y.device)
        ]))
        loss = sums[0].item() / sums[1].item()
        metrics |= {"val_loss": loss, "val_perplexity": math.exp(min(loss, 700.0))}
    return metrics, confusion


def classification_metrics(confusion: torch.Tensor) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 macro-averaged over the classes that occur
    (true or predicted), as scikit-learn computes them with zero_division=0."""
    counts = confusion.double()
    true_positive = counts.diag()
    actual, predicted = counts.sum(dim=1), counts.sum(dim=0)
    present = (actual + predicted) > 0
    precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_positive / actual.clamp(min=1), 0.0)
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-12), 0.0)
    return {
        "val_accuracy": (true_positive.sum() / counts.sum().clamp(min=1)).item(),
        "val_precision": precision[present].mean().item(),
        "val_recall": recall[present].mean().item(),
        "val_f1": f1[present].mean().item(),
    }


def parameter_count(model: nn.Module) -> int:
    """Every parameter, frozen or not: the size of the model one deploys."""
    return sum(parameter.numel() for parameter in model.parameters())
