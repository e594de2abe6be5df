"""Datasets, found by name in one table. Each loader returns a seeded train/val `Dataset`.

This module imports no torch (a spec validates against its tables); loaders import lazily.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from trialforge.data.names import DATASET_LAYOUTS, DATASET_TASKS, DATASETS, FILE_DATASETS

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.models import InputLayout
    from trialforge.spec import DataConfig

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
