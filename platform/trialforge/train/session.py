"""The reporting interface the epoch loop is written against, and its two Ray implementations.

`TuneSession` runs the loop in-process inside a Tune function trainable (one CPU worker);
`TrainSession` runs it on each worker of a `TorchTrainer` (DDP). Both report the same metrics,
write the same checkpoints and log the same MLflow run (rank 0 is the only writer).

Reports are pipelined: `report` snapshots the epoch's state and hands it to a reporter
thread, which queues MLflow's writes (in batches, sent by a thread of their own that never
holds training up, even while MLflow is down: see `trial_log`), writes the checkpoint and
reports to Ray (a round trip to the Tune driver, or Train's barrier and controller poll)
while the next epoch trains. At most one report is in flight, so results reach the
scheduler at most one epoch late, and a stop the scheduler decides ends training at the
next batch.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from trialforge.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from trialforge.train.trial_log import TrialLog

if TYPE_CHECKING:
    import numpy as np

    from trialforge.tracking import TrialRun

# Images of an epoch, or functions drawing them (only a best epoch's are drawn).
Images = Mapping[str, "np.ndarray | Callable[[], np.ndarray]"]

# What is sent with every report besides the metrics.
RUN_ID_KEY = "mlflow_run_id"
STATE_KEY = "trial_state"


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
        images: Images | None = None,
    ) -> None:
        """Report one epoch: metrics (with `epoch`), its checkpoint, the trial's state, and
        images (uint8, HxW or HxWx3, or functions that draw one) that MLflow keeps for the
        trial's best epoch."""
        ...

    def check_stopped(self) -> None:
        """Raise `SystemExit` if Ray stopped this trial (called between batches)."""
        ...


class TrackedSession:
    """Reports each epoch through a reporter thread: MLflow (batched), checkpoint, then Ray.

    Subclasses implement `_ray_report` and `_ray_checkpoint` for Tune or Train, and say how
    often to write to MLflow (`log_interval_s`) and when to upload the best checkpoint.
    """

    rank = 0
    world_size = 1
    device = torch.device("cpu")
    log_interval_s = 1.0
    upload_best_at_end = True

    def __init__(self, run: TrialRun | None, metric: str, mode: str) -> None:
        self.run = run  # None on workers that do not write
        self.log = TrialLog(run, metric, mode, self.log_interval_s, self.upload_best_at_end)
        self._reporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-reporter")
        self._in_flight: Future[None] | None = None
        self._stopped = False
        self.last_state = "running"  # of the last report: "diverged" ends a trial early
        self.last_epoch = 0

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
        self.log.restore(state)
        return state

    def report(
        self,
        metrics: dict[str, float],
        checkpoint: dict[str, Any] | None = None,
        state: str = "running",
        images: Images | None = None,
    ) -> None:
        self._await_report()  # the previous epoch's; raises SystemExit if Ray stopped the trial
        self.last_state, self.last_epoch = state, int(metrics["epoch"])
        snapshot = _clone(checkpoint) if checkpoint is not None and self.rank == 0 else None
        self._in_flight = self._reporter.submit(
            self._publish, dict(metrics), snapshot, state, images if self.rank == 0 else None
        )
        if state != "running":
            self._await_report()

    def check_stopped(self) -> None:
        if self._stopped:
            raise SystemExit(0)

    def close(self) -> None:
        """Deliver the last report and what MLflow still lacks; stop the reporter thread."""
        try:
            self._await_report()
        finally:
            self._reporter.shutdown(wait=True)
            self.log.close()

    def _await_report(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            future.result()  # re-raises what the reporter met: SystemExit, or an error

    def _publish(
        self,
        metrics: dict[str, float],
        snapshot: dict[str, Any] | None,
        state: str,
        images: Images | None,
    ) -> None:
        """On the reporter thread: MLflow when due, the checkpoint file, then Ray."""
        payload: dict[str, Any] = {**metrics, STATE_KEY: state}
        epoch = int(metrics["epoch"])
        improved = self.log.record(epoch, metrics) and snapshot is not None
        if state != "running" or self.log.due():
            self.log.flush()
        folder = Path(tempfile.mkdtemp(prefix="trialforge-ckpt-"))
        try:
            if snapshot is not None:
                # The checkpoint carries what MLflow does not have yet (see TrialLog).
                path = save_checkpoint(
                    {**snapshot, **self.log.checkpoint_extras()}, folder / CHECKPOINT_FILE
                )
                if improved:
                    self.log.keep_best(path, epoch, images or {})
            if state != "running":
                # The trial ends by itself: its whole record is written before the driver
                # learns it is over, so nothing is still being written when the sweep ends
                # (unless MLflow is away: then the driver completes it, see TrialLog).
                self.log.finish(state, _reason(state, epoch))
            if self.run is not None and self.run.run_id is not None:
                # None while MLflow has been unreachable since the trial started.
                payload[RUN_ID_KEY] = self.run.run_id
            try:
                # Ray copies the checkpoint into the trial's storage before this returns.
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
    """One worker of a TorchTrainer: DDP over `world_size` workers, CPU or GPU.

    A stopped trial's workers are killed without warning: MLflow is written every epoch and
    each new best checkpoint uploaded at once, so nothing waits for an end that never comes.
    """

    log_interval_s = 0.0
    upload_best_at_end = False

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


def _clone(state: Any) -> Any:
    """A copy of a checkpoint's tensors, so training can go on while the copy is saved."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _clone(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_clone(value) for value in state)
    return state


def _reason(state: str, epoch: int) -> str | None:
    if state == "diverged":
        return f"the training loss became NaN or infinite at epoch {epoch}"
    return None
