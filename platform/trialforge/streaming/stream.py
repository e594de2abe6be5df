"""A streamed train/val split, and how the driver opens one from `data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialforge.errors import DataError
from trialforge.tasks import Task

if TYPE_CHECKING:
    import ray.data

    from trialforge.data.preprocessing import Preprocessing
    from trialforge.spec import DataConfig

#: Ray Data's tasks ask for a sliver of a CPU, and a streamed trial (or DDP worker) holds
#: `TRIAL_CPUS`, leaving room for them: holding whole CPUs, Tune and Train would take every
#: CPU a sweep may use and the tasks would wait forever. (Tasks that ask for no CPU at all
#: are scheduled seconds late: 3.5 s an epoch, against 0.2 s, for a small folder here.)
TASK_CPUS = 0.01
TRIAL_CPUS = 0.9
#: The object-store memory a trial's stream may fill ahead of its training: Ray Data's own
#: budget is half of the cluster's store, so a slow trial would have whole epochs decoded
#: in shared memory (measured: the store grew with the data, 75 -> 355 MiB from 2,000 to
#: 8,000 images).
STORE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TaskLimits:
    """What each of a stream's Ray Data operators may run: `concurrency` tasks at once, each
    asking for `TASK_CPUS`.

    Ray keeps one idle worker process per CPU and ends the rest after a second, so tasks that
    ask for a sliver of a CPU, left uncapped, run many at once and start new worker processes
    every epoch (measured on 2 CPUs, 4,000 images: 27 s an epoch against 2.5 s capped).
    """

    concurrency: int

    @classmethod
    def for_sweep(cls, trials: int) -> TaskLimits:
        """The cluster's CPUs shared among `trials` concurrent trials, at least one each."""
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        return cls(max(1, cpus // max(1, trials)))

    def read_args(self) -> dict[str, Any]:
        """Keyword arguments for Ray Data's readers."""
        return {"num_cpus": TASK_CPUS, "concurrency": self.concurrency}

    def map_args(self) -> dict[str, Any]:
        """Keyword arguments for `map_batches`."""
        from ray.data import TaskPoolStrategy

        return {"num_cpus": TASK_CPUS, "compute": TaskPoolStrategy(size=self.concurrency)}


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
    preprocessing: Preprocessing | None = None


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


def file_order(seed: int | None) -> ray.data.FileShuffleConfig | None:
    """The training files' order: shuffled anew each epoch (each execution of the dataset),
    from `seed`; None keeps the listed order (validation).

    Files are listed class by class, and a shuffle buffer a few batches deep cannot mix
    classes that far apart. A trial resumed in a new process starts the sequence of orders
    again from the first.
    """
    if seed is None:
        return None
    from ray.data import FileShuffleConfig

    return FileShuffleConfig(seed=seed, reseed_after_execution=True)


def open_stream(config: DataConfig, layout: str, *, seed: int = 0,
                trials: int = 1) -> StreamedData:
    """The streamed split `config` names (`data.stream: true`), shaped for `layout`, its
    training files shuffled from `seed` and read by `trials` concurrent trials; Ray must be
    connected (a table's preprocessing is fitted here, in Ray Data's tasks)."""
    from ray.data import DataContext

    context = DataContext.get_current()  # each dataset carries a copy to the trials
    # Batches in the order the files are listed: a seeded shuffle then repeats exactly.
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the sweep shows its own progress
    context.execution_options.resource_limits = \
        context.execution_options.resource_limits.copy(object_store_memory=STORE_BYTES)
    if config.dataset == "images":
        from trialforge.streaming.images import image_stream

        return image_stream(config, layout, TaskLimits.for_sweep(trials), seed)
    from trialforge.streaming.tables import table_stream

    return table_stream(config, layout, TaskLimits.for_sweep(trials), seed)
