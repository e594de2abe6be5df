"""Seeded train/val splits shared by every loader, with the checks a split needs."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from trialforge.data.dataset import Dataset
from trialforge.errors import DataError
from trialforge.tasks import Task


def split_dataset(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    val_fraction: float,
    seed: int,
    class_names: tuple[str, ...] = (),
    stratify: bool = True,
) -> Dataset:
    """Split arrays into a `Dataset`: stratified by class for classification, seeded.

    Classification labels must be 0..C-1 already; a single class, or too few examples to
    put one in each split, is a `DataError`.
    """
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} inputs but {len(y)} targets")
    if len(x) < 2:
        raise DataError(f"{name}: {len(x)} example(s); need at least 2 to split train/val")
    num_classes = 1
    by_class = None
    if task == "classification":
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2:
            raise DataError(f"{name}: only one class ({labels[0]!r}); a classifier needs two")
        num_classes = int(y.max()) + 1
        # Stratify when every class can give an example to both splits.
        if stratify and counts.min() >= 2 and round(len(y) * val_fraction) >= len(labels):
            by_class = y
    try:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=val_fraction, stratify=by_class, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"{name}: cannot split with data.val_fraction={val_fraction}: {exc}") \
            from None
    return Dataset(
        name=name,
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_train)),
        x_val=torch.from_numpy(np.ascontiguousarray(x_val)),
        y_val=torch.from_numpy(np.ascontiguousarray(y_val)),
        num_classes=num_classes,
        task=task,
        class_names=class_names,
    )
