"""Datasets, found by name in one table. Each loader returns a seeded train/val `Dataset`.

This module imports no torch (a spec validates against its tables); loaders import lazily.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.models import InputLayout
    from trialforge.spec import DataConfig
    from trialforge.tasks import Task

#: Built-in datasets and where their loaders live: `loader(config, *, seed, layout)`.
DATASETS: dict[str, str] = {
    "digits": "trialforge.data.digits:load_digits",
    "series": "trialforge.data.sequences:load_series",
    "text": "trialforge.data.sequences:load_text",
    "table": "trialforge.data.files:load_table",
    "npz": "trialforge.data.files:load_npz",
    "images": "trialforge.data.files:load_images",
}

#: The task each dataset poses; None: read from the data (`data.task`, or the target's type).
DATASET_TASKS: dict[str, Task | None] = {
    "digits": "classification",
    "series": "regression",
    "text": "language_model",
    "table": None,
    "npz": None,
    "images": "classification",
}

#: The input layouts each dataset can be shaped into (`natural`: as stored, for your builder).
DATASET_LAYOUTS: dict[str, tuple[str, ...]] = {
    "digits": ("image", "vector", "sequence"),
    "series": ("vector", "sequence"),
    "text": ("tokens",),
    "table": ("vector",),
    "npz": ("natural", "vector", "image", "sequence"),
    "images": ("image", "vector"),
}

#: Datasets read from a user's files at `data.path`.
FILE_DATASETS = frozenset({"table", "npz", "images", "text"})

Split = Literal["train", "val"]


def load_dataset(config: DataConfig, *, seed: int, layout: InputLayout) -> Dataset:
    """Load the dataset `config` names, split train/val with `seed`, shaped for `layout`.

    Cached per process: trials that reuse a Ray actor share one read-only copy. Bad data
    raises `DataError` naming the file and what is wrong.
    """
    return _load(config.model_dump_json(), seed, layout)


@functools.lru_cache(maxsize=4)
def _load(config_json: str, seed: int, layout: InputLayout) -> Dataset:
    from trialforge.spec import DataConfig

    config = DataConfig.model_validate_json(config_json)
    module_name, _, attr = DATASETS[config.dataset].partition(":")
    loader = getattr(importlib.import_module(module_name), attr)
    dataset: Dataset = loader(config, seed=seed, layout=layout)
    return dataset


__all__ = ["DATASETS", "DATASET_LAYOUTS", "DATASET_TASKS", "FILE_DATASETS", "load_dataset"]
