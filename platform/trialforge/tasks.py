"""What a trial learns (its task) and the metrics each task reports, with their directions.

Torch-free, so a spec validates its metric without importing the training stack.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["classification", "regression", "language_model", "generation"]
Mode = Literal["min", "max"]

#: Reported by every trial of every task: the model's size and its inference latency, the
#: usual second objectives of a multi-objective search.
COST_METRICS: dict[str, Mode] = {
    "params": "min",  # trainable parameters
    "latency_us": "min",  # forward pass, microseconds per validation example
}

#: The metrics each task reports every epoch (besides `epoch` and `epoch_seconds`).
TASK_METRICS: dict[Task, dict[str, Mode]] = {
    "classification": {
        "val_accuracy": "max",
        "val_precision": "max",  # macro averages over classes
        "val_recall": "max",
        "val_f1": "max",
        "val_loss": "min",
        "train_loss": "min",
    },
    "regression": {"val_rmse": "min", "val_mae": "min", "val_loss": "min", "train_loss": "min"},
    "language_model": {"val_perplexity": "min", "val_loss": "min", "train_loss": "min"},
    "generation": {"val_fid": "min", "d_loss": "min", "g_loss": "min"},
}

#: The metric a search optimizes when the spec names none.
DEFAULT_METRIC: dict[Task, str] = {
    "classification": "val_accuracy",
    "regression": "val_rmse",
    "language_model": "val_perplexity",
    "generation": "val_fid",
}


def task_metrics(task: Task) -> dict[str, Mode]:
    """Every metric a trial of `task` reports, with the direction that is better."""
    return {**TASK_METRICS[task], **COST_METRICS}


def check_metric(task: Task, metric: str) -> Mode:
    """The direction of `metric`; `ValueError` naming the allowed ones if `task` lacks it."""
    metrics = task_metrics(task)
    if metric not in metrics:
        known = any(metric in TASK_METRICS[other] for other in TASK_METRICS)
        what = "does not fit" if known else "is unknown for"
        raise ValueError(
            f"metric {metric!r} {what} a {task.replace('_', ' ')} task; "
            f"allowed: {', '.join(metrics)}"
        )
    return metrics[metric]
