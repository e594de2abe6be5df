"""Seeded train/val splits shared by every loader, with the checks a split needs.

Written with numpy rather than taken from scikit-learn's `train_test_split` (same rules: the
validation set is `ceil(fraction * n)` examples, shared among classes in proportion):
importing scikit-learn costs ~1 s of CPU, paid by every sweep's driver before its first trial.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

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
    stratified = False
    if task == "classification":
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2:
            raise DataError(f"{name}: only one class ({labels[0]!r}); a classifier needs two")
        num_classes = int(y.max()) + 1
        # Stratify when every class can give an example to both splits.
        stratified = (stratify and counts.min() >= 2
                      and round(len(y) * val_fraction) >= len(labels))
    val, train = _split_indices(y, val_fraction, seed, stratified)
    if not (len(val) and len(train)):
        raise DataError(f"{name}: cannot split {len(y)} examples with "
                        f"data.val_fraction={val_fraction}: a split would be empty")
    x_train, x_val, y_train, y_val = x[train], x[val], y[train], y[val]
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


def _split_indices(y: np.ndarray, val_fraction: float, seed: int, stratify: bool,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices of the validation and training examples."""
    generator = np.random.default_rng(seed)
    n_val = math.ceil(val_fraction * len(y))
    if not stratify:
        order = generator.permutation(len(y))
        return order[:n_val], order[n_val:]
    groups = [generator.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    share = np.array([len(group) for group in groups]) * n_val / len(y)
    counts = np.floor(share).astype(int)
    # What rounding down left over goes to the classes it shortchanged most.
    for index in np.argsort(counts - share, kind="stable")[: n_val - counts.sum()]:
        counts[index] += 1
    val = np.concatenate([group[:count] for group, count in zip(groups, counts, strict=True)])
    train = np.concatenate([group[count:] for group, count in zip(groups, counts, strict=True)])
    return generator.permutation(val), generator.permutation(train)


def few_labels(data: Dataset, per_class: int, seed: int) -> Dataset:
    """Keep `per_class` seeded-random training examples of each class (validation intact)."""
    generator = np.random.default_rng(seed)
    labels = data.y_train.numpy()
    keep = np.concatenate([
        generator.permutation(np.flatnonzero(labels == label))[:per_class]
        for label in np.unique(labels)
    ])
    keep.sort()
    return Dataset(data.name, data.x_train[keep], data.y_train[keep], data.x_val, data.y_val,
                   data.num_classes, data.task, data.class_names, data.model_args)


Labelled = tuple[int, Path]  # a file and its class


def split_by_file(
    files: Sequence[Labelled], root: Path, val_fraction: float
) -> tuple[list[Labelled], list[Labelled]]:
    """Train and validation files, `ceil(fraction * n)` of each class's for validation: those
    first in the order of a hash of their path under `root`. The same files give the same
    split, whatever the seed, on any machine, and adding files moves few of the others."""
    def rank(item: Labelled) -> str:
        return hashlib.sha256(item[1].relative_to(root).as_posix().encode()).hexdigest()

    train: list[Labelled] = []
    val: list[Labelled] = []
    for label in sorted({label for label, _ in files}):
        ranked = sorted((item for item in files if item[0] == label), key=rank)
        if len(ranked) < 2:
            raise DataError(f"{root}: class {label} has {len(ranked)} file; each class needs "
                            "at least 2, one for training and one for validation")
        cut = min(len(ranked) - 1, math.ceil(val_fraction * len(ranked)))
        val += ranked[:cut]
        train += ranked[cut:]
    return sorted(train, key=lambda item: item[1]), sorted(val, key=lambda item: item[1])
