"""Datasets, found by name in one table. Each loader returns a seeded train/val `Dataset`."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from trialforge.data.dataset import Dataset

if TYPE_CHECKING:
    from trialforge.models import InputLayout

#: Built-in datasets and where their loaders live.
DATASETS: dict[str, str] = {"digits": "trialforge.data.digits:load_digits"}


@functools.lru_cache(maxsize=4)
def load_dataset(
    name: str, *, val_fraction: float, seed: int, layout: InputLayout = "image"
) -> Dataset:
    """Load dataset `name`, split train/val with `seed`, shaped for `layout`.

    Cached per process: trials that reuse a Ray actor share one read-only copy.
    """
    try:
        target = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}") from None
    module_name, _, attr = target.partition(":")
    loader = getattr(importlib.import_module(module_name), attr)
    dataset: Dataset = loader(val_fraction=val_fraction, seed=seed, layout=layout)
    return dataset


__all__ = ["DATASETS", "Dataset", "load_dataset"]
