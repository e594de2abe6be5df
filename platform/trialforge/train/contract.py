"""The trial contract: what a trial reports to Ray, what its checkpoint holds, how it ended,
and the one rule that scores it. Every writer and reader of a trial's record uses this module.

A trial only trains and reports: each epoch's metrics (with `epoch`), a checkpoint, and in
its last report how it ended. The sweep's driver turns those reports into the record in
every store (MLflow, Optuna, the catalog, the registry).

**The scoring rule.** A trial's score is its objective at its *best* epoch (the last epoch
that reached it: on a tie, Tune keeps the later checkpoint). That epoch's checkpoint is the
one kept and registered, so the score is the quality of the model a user gets; a last-epoch
score would rank a model that overfitted in its final epochs by weights nobody keeps. The
same number reaches Optuna (as the trial's value), the catalog, the trial's MLflow run
(`best_<metric>`, and its `trialforge.best_epoch` tag) and the registry (`trialforge.value`).
The sweep's champion is the best-scored trial among those that ran their whole budget
(Optuna's COMPLETE): a trial the scheduler stopped is PRUNED, measured on fewer epochs, and
not a candidate.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import torch

from trialforge.errors import TrialforgeError

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
# Beside each checkpoint file: the metrics of every epoch up to it (JSON, a list of reports).
# A trial resumed from a checkpoint newer than the last report its dead driver saw skips
# epochs; the driver takes their metrics from here (search.monitor).
HISTORY_FILE = "history.json"


class TrialState(str, enum.Enum):
    """How a trial stands: running, or how it ended."""

    RUNNING = "running"
    COMPLETED = "completed"  # every epoch, or stopped by its own early stopping
    STOPPED_EARLY = "stopped_early"  # stopped by the scheduler (Optuna: PRUNED)
    DIVERGED = "diverged"  # a non-finite loss
    FAILED = "failed"  # a code error, an OOM, or a lost worker out of retries
    INTERRUPTED = "interrupted"  # the sweep ended (or its driver died) while it ran


class Report(str, enum.Enum):
    """Keys of a trial's report to Ray, besides its metrics."""

    EPOCH = "epoch"
    STATE = "trial_state"  # a TrialState value: "running" until the last report
    FAILURE = "trial_failure"  # a failed trial's kind of failure (train.failures)
    ERROR = "trial_error"  # a failed trial's exception, and where it was raised
    NODE = "trial_node"  # the Ray node the trial (its rank 0) trains on
    REPEATED = "trial_repeated"  # a report sent again (see train.trial): kept once


class TrialCheckpoint(TypedDict, total=False):
    """What a trial's checkpoint file holds: enough to resume it, and with its spec, to
    rebuild its model (`registry`). GAN trials add the discriminator and both optimizers."""

    model: dict[str, torch.Tensor]  # the state dict (a GAN's generator)
    optimizer: dict[str, Any]
    # What the trial's knobs asked of each param group (`train.hyperparameters`).
    hyperparameters: list[dict[str, Any]]
    lr_schedule: dict[str, Any] | None
    early_stopping: dict[str, float]
    epoch: int
    input_shape: list[int]
    num_classes: int
    input_dtype: str
    model_args: dict[str, Any]
    # How raw input becomes the model's (`data.preprocessing.Preprocessing`, as JSON).
    preprocessing: dict[str, Any] | None
    # The metrics of the trial's last epoch, in its last checkpoint only: a trial restored
    # from it (its driver died before Tune recorded the end) reports that end again.
    final_metrics: dict[str, float] | None
    discriminator: dict[str, torch.Tensor]
    g_optimizer: dict[str, Any]
    d_optimizer: dict[str, Any]
    example_shape: list[int]  # what the model takes, when not input_shape (a GAN's noise)
    latent_dim: int


class CheckpointError(TrialforgeError):
    """A checkpoint file is missing, truncated or not a trialforge checkpoint."""


def save_checkpoint(state: TrialCheckpoint, path: Path) -> Path:
    """Write `state` (tensors, numbers, strings, containers of them) to `path`."""
    torch.save(state, path)
    return path


def load_checkpoint(path: Path) -> TrialCheckpoint:
    """Read a checkpoint with `weights_only=True`: a crafted file cannot run code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a trialforge checkpoint (no 'model' state)")
    return state  # type: ignore[return-value]


def improves(value: Any, best: float | None, mode: str) -> bool:
    """Whether `value` beats `best` (None: nothing yet) in `mode` ("max" or "min"). A value
    that is not a finite number never does, nor does a tie."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


@dataclass
class BestEpoch:
    """A trial's best epoch so far, by the scoring rule (see the module's docstring)."""

    metric: str
    mode: str
    epoch: int = 0
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None  # where that epoch's checkpoint is, if it has one

    def offer(self, result: dict[str, Any], checkpoint: str | None = None) -> bool:
        """Keep `result` if it is the best epoch so far, or ties it (a later epoch that
        reaches the best again wins: Tune keeps the later of two checkpoints that score
        alike); True if so."""
        value = result.get(self.metric, math.nan)
        if not improves(value, None, self.mode):  # not a finite number
            return False
        if self.value is not None and improves(self.value, float(value), self.mode):  # worse
            return False
        self.value = float(result[self.metric])
        self.epoch = int(result.get(Report.EPOCH.value, 0))
        self.metrics = {key: float(value) for key, value in result.items()
                        if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self.checkpoint = checkpoint
        return True


def trial_outcome(last_result: dict[str, Any] | None) -> TrialState:
    """How a trial that ended without an error ended, from its last report.

    The loop's last report says completed, diverged or failed; a trial the scheduler stopped
    has a last report that still says running.
    """
    state = (last_result or {}).get(Report.STATE.value)
    ended = (TrialState.COMPLETED, TrialState.DIVERGED, TrialState.FAILED)
    return TrialState(state) if state in {s.value for s in ended} else TrialState.STOPPED_EARLY


def read_history(location: str) -> list[dict[str, Any]]:
    """The metrics of every epoch up to the checkpoint at `location` (`HISTORY_FILE`)."""
    path = f"{location}/{HISTORY_FILE}"
    try:
        if "://" in location:
            import pyarrow.fs

            filesystem, inner = pyarrow.fs.FileSystem.from_uri(path)
            with filesystem.open_input_stream(inner) as stream:
                text = stream.read().decode()
        else:
            text = Path(path).read_text()
    except (OSError, ValueError) as exc:
        logger.warning("no epoch history beside checkpoint %s: %s", location, exc)
        return []
    history: list[dict[str, Any]] = json.loads(text)
    return history
