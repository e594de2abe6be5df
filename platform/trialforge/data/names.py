"""The built-in datasets by name: where each loader lives, the task it poses and the input
layouts it can be shaped into. Imports nothing, so the spec validates against it cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

#: File datasets that can stream through Ray Data (`data.stream: true`).
STREAMED_DATASETS = frozenset({"images", "table"})
