"""The digits dataset: real images, a stratified split that a seed fixes."""

from __future__ import annotations

import pytest
import torch

from trialforge.data import load_dataset


def test_images_for_cnns_and_vectors_for_mlps() -> None:
    images = load_dataset("digits", val_fraction=0.2, seed=0, layout="image")
    vectors = load_dataset("digits", val_fraction=0.2, seed=0, layout="vector")
    assert images.input_shape == (1, 8, 8)
    assert vectors.input_shape == (64,)
    assert len(images.y_train) + len(images.y_val) == 1797
    assert len(images.y_val) == 360
    assert torch.equal(images.x_train.reshape(-1, 64), vectors.x_train)
    assert images.num_classes == 10
    assert images.x_train.min() >= 0.0 and images.x_train.max() <= 1.0
    assert images.x_train.dtype == torch.float32 and images.y_train.dtype == torch.int64


def test_split_is_stratified() -> None:
    data = load_dataset("digits", val_fraction=0.2, seed=3)
    per_class = torch.bincount(data.y_val, minlength=10)
    assert per_class.min() >= 35 and per_class.max() <= 37


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = load_dataset("digits", val_fraction=0.2, seed=7)
    again = load_dataset("digits", val_fraction=0.2, seed=7)
    other = load_dataset("digits", val_fraction=0.2, seed=8)
    assert torch.equal(first.x_val, again.x_val) and torch.equal(first.y_train, again.y_train)
    assert not torch.equal(first.x_val, other.x_val)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; allowed: digits"):
        load_dataset("mnist", val_fraction=0.2, seed=0)
