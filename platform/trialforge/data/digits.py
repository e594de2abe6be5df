"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download.

Read from the file scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`, what its
`load_digits` reads), without importing scikit-learn: that costs ~1 s before a sweep starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trialforge.data.dataset import Dataset
from trialforge.data.preprocessing import ArrayInputs, Preprocessing
from trialforge.data.split import few_labels, split_dataset
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
    pixels, y = _digits_file()
    # Raw input: the 64 pixel values (0-16) of an image, row by row, as scikit-learn has them.
    inputs = ArrayInputs.named("pixel_", _SHAPES[layout][1:], scale=1 / 16)
    x = inputs.values(pixels)
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
                         val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                         seed=seed, class_names=names,
                         preprocessing=Preprocessing(inputs=inputs, task="classification",
                                                     class_names=list(names)))
    if config.train_per_class is not None:
        data = few_labels(data, config.train_per_class, seed)
    return data


def digits_path() -> Path:
    """The file of digits scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`)."""
    found = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if found is None or not found.submodule_search_locations:
        raise DataError("data.dataset digits needs scikit-learn, which ships the images: "
                        "pip install scikit-learn")
    return Path(next(iter(found.submodule_search_locations))) / "datasets/data/digits.csv.gz"


def _digits_file() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 rows of 64 pixel values (0-16) and their digits, as scikit-learn ships them."""
    table = np.loadtxt(digits_path(), delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)
