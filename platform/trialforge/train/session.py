"""The reporting interface the epoch loop is written against, and its two Ray implementations.

`TuneSession` runs the loop in-process inside a Tune function trainable (one CPU worker);
`TrainSession` runs it on each worker of a `TorchTrainer` (DDP). Both report the same metrics,
write the same checkpoints and log the same MLflow run (rank 0 is the only writer).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from trialforge.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from trialforge.tracking import TrialRun

# What is sent with every report besides the metrics.
RUN_ID_KEY = "mlflow_run_id"
STATE_KEY = "trial_state"
BEST_KEY = "best_value"  # in a checkpoint: the trial's best objective so far
METRICS_KEY = "metrics"  # in a checkpoint: the metrics of its epoch


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

    def restored_checkpoint(self) -> dict[str, Any] | None:
        """The state of the last checkpoint if Ray restarted this trial, else None."""
        ...

    def report(
        self,
        metrics: dict[str, float],
        checkpoint: dict[str, Any] | None = None,
        state: str = "running",
    ) -> None:
        """Report one epoch: metrics (with `epoch`), its checkpoint, and the trial's state."""
        ...


class TrackedSession:
    """Logs each epoch to the trial's MLflow run (if this worker writes) before Ray sees it.

    Subclasses implement `_ray_report` and `_ray_checkpoint` for Tune or Train.
    """

    rank = 0
    world_size = 1
    device = torch.device("cpu")
    # Wait for the MLflow write at the end of each report, not at the next one: needed where
    # a stopped trial's process is killed without warning (TorchTrainer workers).
    flush_each_report = False

    def __init__(self, run: TrialRun | None, metric: str, mode: str) -> None:
        self.run = run  # None on workers that do not write
        self.metric = metric
        self.mode = mode
        self.best: float | None = None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        return None

    def restored_checkpoint(self) -> dict[str, Any] | None:
        checkpoint = self._ray_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            state = load_checkpoint(Path(directory) / CHECKPOINT_FILE)
        self.best = state.get(BEST_KEY)
        if self.run is not None and METRICS_KEY in state:
            # Ray kept this epoch's checkpoint; if its MLflow write was lost with the process,
            # it is written now (a no-op when MLflow has it).
            self.run.log_epoch(int(state["epoch"]), _without_epoch(state[METRICS_KEY]))
        return state

    def report(
        self,
        metrics: dict[str, float],
        checkpoint: dict[str, Any] | None = None,
        state: str = "running",
    ) -> None:
        # Write order keeps MLflow complete across a crash: the previous epoch's write is done
        # before this epoch's checkpoint reaches Ray, and the checkpoint carries its metrics.
        if self.run is not None:
            self.run.flush()
        payload: dict[str, Any] = {**metrics, STATE_KEY: state}
        improved = checkpoint is not None and self._improves(metrics.get(self.metric, math.nan))
        if improved:
            self.best = metrics[self.metric]
        folder = Path(tempfile.mkdtemp(prefix="trialforge-ckpt-"))
        path = None
        try:
            if checkpoint is not None and self.rank == 0:
                state_to_save = {**checkpoint, BEST_KEY: self.best, METRICS_KEY: metrics}
                path = save_checkpoint(state_to_save, folder / CHECKPOINT_FILE)
            if self.run is not None:
                payload[RUN_ID_KEY] = self.run.run_id
                self.run.log_epoch(int(metrics["epoch"]), _without_epoch(metrics))
            # Ray copies the checkpoint into the trial's storage before this returns.
            self._ray_report(payload, str(folder) if path else None)
            if self.flush_each_report and self.run is not None:
                self.run.flush()
        finally:
            # Also when Ray stops the trial inside the report (SystemExit): the best
            # checkpoint still reaches MLflow, and the folder is always cleaned up.
            if improved and path is not None and self.run is not None:
                self.run.log_best_checkpoint(folder, int(metrics["epoch"]))
            else:
                shutil.rmtree(folder, ignore_errors=True)

    def _improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _ray_report(self, payload: dict[str, Any], checkpoint_dir: str | None) -> None:
        raise NotImplementedError

    def _ray_checkpoint(self) -> Any:
        raise NotImplementedError


class TuneSession(TrackedSession):
    """In-process: the loop runs inside the Tune function trainable itself."""

    def _ray_report(self, payload: dict[str, Any], checkpoint_dir: str | None) -> None:
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(payload, checkpoint=checkpoint)

    def _ray_checkpoint(self) -> Any:
        from ray import tune

        return tune.get_checkpoint()


class TrainSession(TrackedSession):
    """One worker of a TorchTrainer: DDP over `world_size` workers, CPU or GPU."""

    flush_each_report = True

    def __init__(self, run: TrialRun | None, metric: str, mode: str) -> None:
        import ray.train
        import ray.train.torch

        super().__init__(run, metric, mode)
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

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


def _without_epoch(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if key != "epoch"}
