"""An in-memory train/val split: small datasets live as tensors, no DataLoader needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from trialforge.tasks import Task


@dataclass(frozen=True)
class Dataset:
    """Train and validation tensors of one task.

    `num_classes` is the model's output width: the classes of a classifier, 1 for a
    regression, the vocabulary size of a language model. `model_args` are passed on to the
    model builder (e.g. `vocab_size` for token inputs).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    task: Task = "classification"
    class_names: tuple[str, ...] = ()
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch dimension)."""
        return tuple(self.x_train.shape[1:])

    @property
    def input_dtype(self) -> str:
        """The inputs' dtype as torch names it, without its module (`float32`, `int64`)."""
        return str(self.x_train.dtype).removeprefix("torch.")

    @property
    def nbytes(self) -> int:
        """The memory its tensors take."""
        tensors = (self.x_train, self.y_train, self.x_val, self.y_val)
        return sum(tensor.nelement() * tensor.element_size() for tensor in tensors)

    def to(self, device: torch.device) -> Dataset:
        """The same split with its tensors on `device`."""
        if self.x_train.device == device:
            return self
        return Dataset(
            self.name, self.x_train.to(device), self.y_train.to(device), self.x_val.to(device),
            self.y_val.to(device), self.num_classes, self.task, self.class_names,
            self.model_args,
        )
