"""Each task's loss and validation metrics, summed over DDP workers before they are divided.

Every worker evaluates its shard; sums (a confusion matrix, squared errors, token losses) are
all-reduced, so the metrics are those of the whole validation set on any number of workers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from torch.nn import functional

from trialforge.tasks import Task

if TYPE_CHECKING:
    from trialforge.train.batches import Batch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Workers(Protocol):
    """Where evaluation runs (a trial's session): its device, and the sum over its workers."""

    @property
    def device(self) -> torch.device: ...
    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor: ...


class OneProcess:
    """Evaluation in this process alone, on the CPU (the driver scoring a test split)."""

    device = torch.device("cpu")

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values


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
    model: nn.Module, batches: Iterable[Batch], task: Task, num_classes: int,
    session: Workers,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Validation metrics of `task` over this worker's `batches`, summed over all workers,
    and the confusion matrix of a classifier (rows: true class, columns: predicted)."""
    model.eval()
    sums = torch.zeros(_SUM_WIDTH[task](num_classes), device=session.device)
    seconds, count = 0.0, 0
    for x, y in batches:
        started = time.perf_counter()
        output = model(x)
        seconds += time.perf_counter() - started
        count += len(x)
        sums += _SUMS[task](output.float(), y, num_classes)
    metrics = {"latency_us": seconds / max(1, count) * 1e6}
    sums = session.all_reduce_sum(sums)
    if task != "classification":
        return metrics | _FROM_SUMS[task](sums.tolist()), None
    confusion = sums[1:].reshape(num_classes, num_classes).round().long().cpu()
    metrics |= {"val_loss": sums[0].item() / max(1, int(confusion.sum())),
                **classification_metrics(confusion)}
    return metrics, confusion


def _classification_sums(output: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """The summed loss, then the confusion matrix's cells."""
    loss_sum = functional.cross_entropy(output, y, reduction="sum")
    cells = torch.bincount(y * classes + output.argmax(dim=1), minlength=classes**2)
    return torch.cat([loss_sum.reshape(1), cells.to(output.dtype)])


def _regression_sums(output: torch.Tensor, y: torch.Tensor, _: int) -> torch.Tensor:
    error = output.squeeze(-1) - y
    return torch.stack([(error**2).sum(), error.abs().sum(),
                        torch.tensor(float(len(y)), device=y.device)])


def _language_model_sums(output: torch.Tensor, y: torch.Tensor, _: int) -> torch.Tensor:
    loss_sum = functional.cross_entropy(output.flatten(0, 1), y.flatten(), reduction="sum")
    return torch.stack([loss_sum, torch.tensor(float(y.numel()), device=y.device)])


def _regression_metrics(sums: list[float]) -> dict[str, float]:
    squared, absolute, count = sums
    return {"val_loss": squared / count, "val_rmse": math.sqrt(squared / count),
            "val_mae": absolute / count}


def _language_model_metrics(sums: list[float]) -> dict[str, float]:
    loss = sums[0] / sums[1]
    return {"val_loss": loss, "val_perplexity": math.exp(min(loss, 700.0))}


# Per task: what a batch adds up (and how wide that is), and the metrics of the sums.
_SUMS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "classification": _classification_sums, "regression": _regression_sums,
    "language_model": _language_model_sums}
_SUM_WIDTH: dict[str, Callable[[int], int]] = {
    "classification": lambda classes: 1 + classes**2, "regression": lambda _: 3,
    "language_model": lambda _: 2}
_FROM_SUMS: dict[str, Callable[[list[float]], dict[str, float]]] = {
    "regression": _regression_metrics, "language_model": _language_model_metrics}


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
