"""An in-memory train/val split: small datasets live as tensors, no DataLoader needed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from trialforge.tasks import Task

if TYPE_CHECKING:
    from trialforge.data.preprocessing import Preprocessing


@dataclass(frozen=True)
class Dataset:
    """Train and validation tensors of one task.

    `num_classes` is the model's output width: the classes of a classifier, 1 for a
    regression, the vocabulary size of a language model. `model_args` are passed on to the
    model builder (e.g. `vocab_size` for token inputs). The test split (`data.test_fraction`)
    stays with the driver: trials get the dataset `without_test()`. `preprocessing` turns raw
    input into these tensors (fitted on the training split).
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
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    preprocessing: Preprocessing | None = None

    def without_test(self) -> Dataset:
        """The train/validation split alone: what trials see."""
        if self.x_test is None:
            return self
        return dataclasses.replace(self, x_test=None, y_test=None)

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
        tensors = (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test)
        return sum(t.nelement() * t.element_size() for t in tensors if t is not None)

    def to(self, device: torch.device) -> Dataset:
        """The same split with its tensors on `device`."""
        if self.x_train.device == device:
            return self
        return dataclasses.replace(
            self.without_test(), x_train=self.x_train.to(device), y_train=self.y_train.to(device),
            x_val=self.x_val.to(device), y_val=self.y_val.to(device))
