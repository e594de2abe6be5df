"""Seeded train/val splits shared by every loader, with the checks a split needs.

Written with numpy rather than taken from scikit-learn's `train_test_split` (same rules: the
validation set is `ceil(fraction * n)` examples, shared among classes in proportion):
importing scikit-learn costs ~1 s of CPU, paid by every sweep's driver before its first trial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trialforge.data.dataset import Dataset
from trialforge.data.preprocessing import Preprocessing
from trialforge.errors import DataError
from trialforge.tasks import Task


@dataclass(frozen=True)
class SplitIndices:
    """Which examples train, validate and test (empty: no test split)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(
    name: str, y: np.ndarray, *, task: Task, val_fraction: float, seed: int,
    test_fraction: float = 0.0, stratify: bool = True,
) -> SplitIndices:
    """Seeded indices of each split: the test split (`ceil(test_fraction * n)` examples) is
    carved off first, then the validation split (`ceil(val_fraction * n)`) from the rest;
    stratified by class for classification when every class can give one to each split.

    A single class, or too few examples to fill each split, is a `DataError`.
    """
    if len(y) < 2:
        raise DataError(f"{name}: {len(y)} example(s); need at least 2 to split train/val")
    stratified = False
    if task == "classification":
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2:
            raise DataError(f"{name}: only one class ({labels[0]!r}); a classifier needs two")
        held_out = min(val_fraction, test_fraction or 1.0)
        stratified = (stratify and counts.min() >= (3 if test_fraction else 2)
                      and round(len(y) * held_out) >= len(labels))
    generator = np.random.default_rng(seed)
    rest = np.arange(len(y))
    test = np.zeros(0, dtype=np.int64)
    if test_fraction:
        test, rest = _carve(y, rest, math.ceil(test_fraction * len(y)), generator, stratified)
    val, train = _carve(y, rest, math.ceil(val_fraction * len(y)), generator, stratified)
    if not (len(val) and len(train) and (len(test) or not test_fraction)):
        fractions = f"data.val_fraction={val_fraction}" + (
            f" and data.test_fraction={test_fraction}" if test_fraction else "")
        raise DataError(f"{name}: cannot split {len(y)} examples with {fractions}: a split "
                        "would be empty")
    return SplitIndices(train, val, test)


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
    test_fraction: float = 0.0,
    indices: SplitIndices | None = None,
    preprocessing: Preprocessing | None = None,
) -> Dataset:
    """Split arrays into a `Dataset` (with `indices`, or `split_indices`' own).

    Classification labels must be 0..C-1 already.
    """
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} inputs but {len(y)} targets")
    split = indices or split_indices(name, y, task=task, val_fraction=val_fraction, seed=seed,
                                     test_fraction=test_fraction, stratify=stratify)

    def part(values: np.ndarray, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values[index]))

    tested = len(split.test) > 0
    return Dataset(
        name=name,
        x_train=part(x, split.train),
        y_train=part(y, split.train),
        x_val=part(x, split.val),
        y_val=part(y, split.val),
        num_classes=int(y.max()) + 1 if task == "classification" else 1,
        task=task,
        class_names=class_names,
        x_test=part(x, split.test) if tested else None,
        y_test=part(y, split.test) if tested else None,
        preprocessing=preprocessing,
    )


def _carve(y: np.ndarray, pool: np.ndarray, count: int, generator: np.random.Generator,
           stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """`count` shuffled examples of `pool`, and the rest of it (shuffled)."""
    if not stratify:
        order = generator.permutation(pool)
        return order[:count], order[count:]
    groups = [generator.permutation(pool[y[pool] == label]) for label in np.unique(y[pool])]
    share = np.array([len(group) for group in groups]) * count / len(pool)
    counts = np.floor(share).astype(int)
    # What rounding down left over goes to the classes it shortchanged most.
    for index in np.argsort(counts - share, kind="stable")[: count - counts.sum()]:
        counts[index] += 1
    taken = np.concatenate([group[:n] for group, n in zip(groups, counts, strict=True)])
    rest = np.concatenate([group[n:] for group, n in zip(groups, counts, strict=True)])
    return generator.permutation(taken), generator.permutation(rest)


def few_labels(data: Dataset, per_class: int, seed: int) -> Dataset:
    """Keep `per_class` seeded-random training examples of each class (validation intact)."""
    generator = np.random.default_rng(seed)
    labels = data.y_train.numpy()
    keep = np.concatenate([
        generator.permutation(np.flatnonzero(labels == label))[:per_class]
        for label in np.unique(labels)
    ])
    keep.sort()
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


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
