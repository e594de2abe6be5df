"""The reporting interface the epoch loop is written against, and its two Ray implementations.

`TuneSession` runs the loop in-process inside a Tune function trainable (one CPU worker);
`TrainSession` runs it on each worker of a `TorchTrainer` (DDP). Both report the same metrics
and write the same checkpoints; a trial reports to Ray and nothing else (the sweep's driver
writes every store, see `train.contract`).

Reports are pipelined: `report` snapshots the epoch's state and hands it to a reporter
thread, which writes the checkpoint (with the figures of a best epoch beside it) and reports
to Ray (a round trip to the Tune driver, or Train's barrier and controller poll) while the
next epoch trains. At most one report is in flight, so results reach the scheduler at most
one epoch late, and a stop the scheduler decides ends training at the next batch.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil
import torch
from torch import nn

from trialforge.figures import FIGURES_FILE, Figure
from trialforge.train.contract import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    BestEpoch,
    Report,
    TrialCheckpoint,
    TrialState,
    load_checkpoint,
    read_history,
    save_checkpoint,
)

if TYPE_CHECKING:
    import ray.data

    from trialforge.streaming import StreamedData

# Figures of an epoch, or functions making them (called for a best epoch only).
Figures = Mapping[str, Figure | Callable[[], Figure]]


#: Reported with each epoch by a Ray session: the trial process's resident memory, in MiB.
MEMORY_METRIC = "memory_mb"


class TrialSession(Protocol):
    """What the epoch loop needs from whoever runs it."""

    rank: int
    world_size: int
    device: torch.device

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to this worker's device (and wrap it for DDP)."""
        ...

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over all workers (identity with one worker)."""
        ...

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every worker rank 0's buffers (BatchNorm statistics), which its checkpoint has."""
        ...

    def restored_checkpoint(self) -> TrialCheckpoint | None:
        """The state of the last checkpoint if Ray restarted this trial, else None."""
        ...

    def report(
        self,
        metrics: dict[str, float],
        checkpoint: TrialCheckpoint | None = None,
        state: TrialState = TrialState.RUNNING,
        figures: Figures | None = None,
    ) -> None:
        """Report one epoch: metrics (with `epoch`), its checkpoint, the trial's state, and
        figures (`trialforge.figures`, or functions making one) kept beside the checkpoint
        of a best epoch, for the driver to draw."""
        ...

    def check_stopped(self) -> None:
        """Raise `SystemExit` if Ray stopped this trial (called between batches)."""
        ...

    def stream_shard(self, stream: StreamedData, split: str) -> ray.data.DataIterator:
        """This worker's share of a streamed split (`train` or `val`), to iterate."""
        ...


class RaySession:
    """Reports each epoch through a reporter thread: the checkpoint folder, then Ray.

    Subclasses implement `_ray_report` and `_ray_checkpoint` for Tune or Train.
    """

    rank = 0
    world_size = 1
    device = torch.device("cpu")

    def __init__(self, metric: str, mode: str, node: str = "") -> None:
        self.best = BestEpoch(metric, mode)
        self.node = node
        self._reporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-reporter")
        self._in_flight: Future[None] | None = None
        self._stopped = False
        self.last_epoch = 0
        self.history: list[dict[str, float]] = []  # every epoch's metrics (HISTORY_FILE)
        self._process = psutil.Process()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def stream_shard(self, stream: StreamedData, split: str) -> ray.data.DataIterator:
        dataset: ray.data.Dataset = getattr(stream, split)
        iterator: ray.data.DataIterator = dataset.iterator()
        return iterator

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        return None

    def restored_checkpoint(self) -> TrialCheckpoint | None:
        checkpoint = self._ray_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            self.history = read_history(directory)
            return load_checkpoint(Path(directory) / CHECKPOINT_FILE)

    def report(
        self,
        metrics: dict[str, float],
        checkpoint: TrialCheckpoint | None = None,
        state: TrialState = TrialState.RUNNING,
        figures: Figures | None = None,
    ) -> None:
        self._await_report()  # the previous epoch's; raises SystemExit if Ray stopped the trial
        self.last_epoch = int(metrics[Report.EPOCH.value])
        self.history = [*(h for h in self.history if h[Report.EPOCH.value] < self.last_epoch),
                        dict(metrics)]
        # Figures are made for a best epoch only: the driver keeps the best one's.
        best = self.best.offer(metrics) and checkpoint is not None
        snapshot = _clone(checkpoint) if checkpoint is not None and self.rank == 0 else None
        payload: dict[str, Any] = {**metrics, Report.STATE.value: TrialState(state).value,
                                   Report.NODE.value: self.node,
                                   # What the trial's process holds: a leak shows across trials.
                                   MEMORY_METRIC: self._process.memory_info().rss / 2**20}
        self._in_flight = self._reporter.submit(
            self._publish, payload, snapshot, figures if best and self.rank == 0 else None,
            list(self.history))
        if state != TrialState.RUNNING:
            self._await_report()

    def check_stopped(self) -> None:
        if self._stopped:
            raise SystemExit(0)

    def close(self) -> None:
        """Deliver the last report; stop the reporter thread."""
        try:
            self._await_report()
        finally:
            self._reporter.shutdown(wait=True)

    def report_failure(self, report: dict[str, Any]) -> None:
        """The last report of a trial that failed by itself (see `train.failures`)."""
        self._ray_report({**report, Report.STATE.value: TrialState.FAILED.value,
                          Report.NODE.value: self.node}, None)

    def _await_report(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            future.result()  # re-raises what the reporter met: SystemExit, or an error

    def _publish(
        self, payload: dict[str, Any], snapshot: TrialCheckpoint | None, figures: Figures | None,
        history: list[dict[str, float]],
    ) -> None:
        """On the reporter thread: the checkpoint folder (with a best epoch's figures), then
        Ray, which copies the folder into the trial's storage before it returns."""
        folder = Path(tempfile.mkdtemp(prefix="trialforge-ckpt-"))
        try:
            if snapshot is not None:
                save_checkpoint(snapshot, folder / CHECKPOINT_FILE)
                (folder / HISTORY_FILE).write_text(json.dumps(history, allow_nan=True))
                if figures:
                    (folder / FIGURES_FILE).write_text(json.dumps(
                        {name: made() if callable(made) else made
                         for name, made in figures.items()}))
            try:
                self._ray_report(payload, str(folder) if snapshot is not None else None)
            except SystemExit:
                self._stopped = True  # Ray's way to say the scheduler stopped this trial
                raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _ray_report(self, payload: dict[str, Any], checkpoint_dir: str | None) -> None:
        raise NotImplementedError

    def _ray_checkpoint(self) -> Any:
        raise NotImplementedError


class TuneSession(RaySession):
    """In-process: the loop runs inside the Tune function trainable itself."""

    def _ray_report(self, payload: dict[str, Any], checkpoint_dir: str | None) -> None:
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(payload, checkpoint=checkpoint)

    def _ray_checkpoint(self) -> Any:
        from ray import tune

        return tune.get_checkpoint()


class TrainSession(RaySession):
    """One worker of a TorchTrainer: DDP over `world_size` workers, CPU or GPU."""

    def __init__(self, metric: str, mode: str, node: str = "") -> None:
        import ray.train
        import ray.train.torch

        super().__init__(metric, mode, node)
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def stream_shard(self, stream: StreamedData, split: str) -> ray.data.DataIterator:
        import ray.train

        # The trainer was given the stream's datasets: Train splits each over the workers.
        shard: ray.data.DataIterator = ray.train.get_dataset_shard(split)
        return shard

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        # Each worker updates BatchNorm's running statistics on its own shard; evaluating with
        # rank 0's makes the reported metrics those of the model rank 0 checkpoints.
        if self.world_size > 1:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def _ray_report(self, payload: dict[str, Any], checkpoint_dir: str | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(payload, checkpoint=checkpoint)

    def _ray_checkpoint(self) -> Any:
        import ray.train

        return ray.train.get_checkpoint()


def _clone(state: Any) -> Any:
    """A copy of a checkpoint's tensors, so training can go on while the copy is saved."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _clone(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_clone(value) for value in state)
    return state
