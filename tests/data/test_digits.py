"""The digits dataset: real images, a stratified split that a seed fixes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from trialforge.data import load_dataset
from trialforge.data.dataset import Dataset
from trialforge.data.split import split_dataset
from trialforge.errors import DataError
from trialforge.spec import DataConfig

DIGITS = DataConfig()


def _digits(seed: int = 0, layout: str = "image", **fields: object) -> Dataset:
    return load_dataset(DataConfig.model_validate(fields) if fields else DIGITS, seed=seed,
                        layout=layout)  # type: ignore[arg-type]


def test_images_for_cnns_and_vectors_for_mlps() -> None:
    images = _digits(layout="image")
    vectors = _digits(layout="vector")
    assert images.input_shape == (1, 8, 8)
    assert vectors.input_shape == (64,)
    assert len(images.y_train) + len(images.y_val) == 1797
    assert len(images.y_val) == 360
    assert torch.equal(images.x_train.reshape(-1, 64), vectors.x_train)
    assert images.num_classes == 10
    assert images.x_train.min() >= 0.0 and images.x_train.max() <= 1.0
    assert images.x_train.dtype == torch.float32 and images.y_train.dtype == torch.int64


def test_split_is_stratified() -> None:
    data = _digits(seed=3)
    per_class = torch.bincount(data.y_val, minlength=10)
    assert per_class.min() >= 35 and per_class.max() <= 37


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = _digits(seed=7)
    again = _digits(seed=7)
    other = _digits(seed=8)
    assert torch.equal(first.x_val, again.x_val) and torch.equal(first.y_train, again.y_train)
    assert not torch.equal(first.x_val, other.x_val)


def test_rows_as_a_sequence_for_rnns() -> None:
    sequences = _digits(layout="sequence")
    images = _digits(layout="image")
    assert sequences.input_shape == (8, 8)  # 8 steps (rows) of 8 features
    assert torch.equal(sequences.x_train, images.x_train[:, 0])


def test_some_classes_relabelled_with_few_labels_each() -> None:
    data = _digits(classes=[5, 6, 7, 8, 9], train_per_class=10)
    assert data.num_classes == 5 and data.class_names == ("5", "6", "7", "8", "9")
    assert torch.bincount(data.y_train).tolist() == [10] * 5
    assert len(data.y_val) == 180  # 20% of the 896 images of 5-9: validation keeps them all
    again = _digits(classes=[5, 6, 7, 8, 9], train_per_class=10)
    assert torch.equal(data.x_train, again.x_train)


def test_bad_classes_and_layouts_are_data_errors() -> None:
    with pytest.raises(DataError, match=r"data.classes: digits are 0-9, not \[12\]"):
        _digits(classes=[1, 12])
    with pytest.raises(DataError, match="digits cannot be shaped as 'tokens'"):
        _digits(layout="tokens")


def test_the_split_keeps_every_example_once_and_each_class_in_proportion() -> None:
    y = np.repeat(np.arange(3), [50, 30, 20])
    x = np.arange(100, dtype=np.float32)[:, None]
    data = split_dataset("toy", x, y, task="classification", val_fraction=0.25, seed=1)
    seen = sorted([*data.x_train[:, 0].tolist(), *data.x_val[:, 0].tolist()])
    assert seen == list(range(100)) and len(data.y_val) == 25
    assert torch.bincount(data.y_val).tolist() == [13, 7, 5]  # 12.5, 7.5, 5 rounded to 25
    with pytest.raises(DataError, match="a split would be empty"):
        split_dataset("toy", x, y, task="regression", val_fraction=1.0, seed=1)


def test_digits_load_without_importing_scikit_learn() -> None:
    """Importing scikit-learn costs a sweep's driver ~1 s before its first trial."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from trialforge.data import load_dataset; "
         "from trialforge.spec import DataConfig; load_dataset(DataConfig(), seed=0, "
         "layout='image'); print(sorted(m for m in sys.modules if m.startswith('sklearn')))"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
