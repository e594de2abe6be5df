"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits as _sklearn_digits
from sklearn.model_selection import train_test_split

from trialforge.data.dataset import Dataset


def load_digits(*, val_fraction: float = 0.2, seed: int = 0, layout: str = "image") -> Dataset:
    """Digits scaled to [0, 1], split stratified by class with `seed`.

    `layout="image"` gives (N, 1, 8, 8) tensors for CNNs, `"vector"` gives (N, 64) for MLPs.
    """
    bunch = _sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=val_fraction, stratify=y, random_state=seed
    )
    shape = (-1, 1, 8, 8) if layout == "image" else (-1, 64)
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(x_train).reshape(shape),
        y_train=torch.from_numpy(y_train),
        x_val=torch.from_numpy(x_val).reshape(shape),
        y_val=torch.from_numpy(y_val),
        num_classes=10,
    )
