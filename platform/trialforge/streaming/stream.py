"""A streamed train/val split, and how the driver opens one from `data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialforge.errors import DataError
from trialforge.tasks import Task

if TYPE_CHECKING:
    import ray.data

    from trialforge.spec import DataConfig

#: Ray Data's tasks ask for a sliver of a CPU, and a streamed trial (or DDP worker) holds
#: `TRIAL_CPUS`, leaving room for them: holding whole CPUs, Tune and Train would take every
#: CPU a sweep may use and the tasks would wait forever. (Tasks that ask for no CPU at all
#: are scheduled seconds late: 3.5 s an epoch, against 0.2 s, for a small folder here.)
TASK_CPUS = 0.01
TRIAL_CPUS = 0.9


@dataclass(frozen=True)
class StreamedData:
    """Train and validation datasets whose rows are `x` (one example) and `y` (its target),
    with what a model builder needs to know of them. Nothing in it holds the data."""

    name: str
    train: ray.data.Dataset
    val: ray.data.Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    task: Task = "classification"
    class_names: tuple[str, ...] = ()
    model_args: dict[str, Any] = field(default_factory=dict)
    input_dtype: str = "float32"


def check_stream(config: DataConfig, layout: str) -> Task:
    """Check the files `config` streams (the folders, the columns) before Ray starts and
    anything is written; the task they pose. A bad one is a `DataError` naming the file."""
    if config.dataset == "images":
        from trialforge.streaming.images import image_split

        image_split(config, layout)
        return "classification"
    if config.dataset == "table":
        from trialforge.streaming.tables import table_layout

        return table_layout(config, layout).task
    raise DataError(f"data.stream: dataset {config.dataset!r} does not stream")


def open_stream(config: DataConfig, layout: str) -> StreamedData:
    """The streamed split `config` names (`data.stream: true`), shaped for `layout`; Ray must
    be connected (a table's preprocessing is fitted here, in Ray Data's tasks)."""
    from ray.data import DataContext

    context = DataContext.get_current()  # each dataset carries a copy to the trials
    # Batches in the order the files are listed: a seeded shuffle then repeats exactly.
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the sweep shows its own progress
    if config.dataset == "images":
        from trialforge.streaming.images import image_stream

        return image_stream(config, layout)
    from trialforge.streaming.tables import table_stream

    return table_stream(config, layout)
