"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits

from trialforge.data.dataset import Dataset
from trialforge.data.split import split_dataset
from trialforge.errors import DataError

if TYPE_CHECKING:
    from trialforge.spec import DataConfig

_SHAPES = {"image": (-1, 1, 8, 8), "vector": (-1, 64), "sequence": (-1, 8, 8)}


def load_digits(config: DataConfig, *, seed: int = 0, layout: str = "image") -> Dataset:
    """Digits scaled to [0, 1], split stratified by class with `seed`.

    `layout`: `image` (N, 1, 8, 8) for CNNs, `vector` (N, 64) for MLPs, `sequence`
    (N, 8, 8): the image read row by row, 8 steps of 8 features, for RNNs.
    `data.classes` keeps some digits (relabelled 0..k-1 in the order given) and
    `data.train_per_class` keeps that many training images of each: the few-label setting
    of transfer learning.
    """
    if layout not in _SHAPES:
        raise DataError(f"digits cannot be shaped as {layout!r}; allowed: {', '.join(_SHAPES)}")
    bunch = _sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(_SHAPES[layout])
    y = bunch.target.astype(np.int64)
    names = tuple(str(digit) for digit in range(10))
    if config.classes is not None:
        unknown = sorted(set(config.classes) - set(range(10)))
        if unknown:
            raise DataError(f"data.classes: digits are 0-9, not {unknown}")
        keep = np.isin(y, config.classes)
        relabel = {digit: index for index, digit in enumerate(config.classes)}
        x, y = x[keep], np.array([relabel[int(digit)] for digit in y[keep]], dtype=np.int64)
        names = tuple(str(digit) for digit in config.classes)
    data = split_dataset("digits", x, y, task="classification",
                         val_fraction=config.val_fraction, seed=seed, class_names=names)
    if config.train_per_class is not None:
        data = few_labels(data, config.train_per_class, seed)
    return data


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
