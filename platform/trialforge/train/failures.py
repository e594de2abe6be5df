"""How a trial failed, and what a sweep does about it.

- `diverged`: the loss became NaN or infinite. Told to Optuna as FAIL, so TPE leaves the
  region; not retried.
- `oom`: out of memory (torch's, or Ray's memory monitor). Optuna FAIL; not retried: the
  same knobs would run out again.
- `worker_lost`: a worker, its node or a DDP peer died or was preempted. Retried from the
  last checkpoint, up to `train.max_failures` times.
- `code_error`: the model, the data or user code raised. Not retried; the other trials go
  on, unless the sweep's first `search.fail_fast` trials all fail with the same error: then
  the sweep stops with it.

A trial that fails by itself (code error, OOM) reports it as its last result and ends
normally, so neither Tune nor Train retries it; a lost worker is an error they retry.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import torch

from trialforge.train.contract import Report

DIVERGED = "diverged"
OUT_OF_MEMORY = "oom"
WORKER_LOST = "worker_lost"
CODE_ERROR = "code_error"

# Ray's errors for a process, actor or node that is gone (by name: they are read back from a
# trial's error file too).
_LOST = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "NodeDiedError",
         "WorkerCrashedError", "OwnerDiedError", "PreemptionError", "WorkerGroupError")
# What a DDP worker raises when a peer dies under a collective.
_LOST_PEER = ("Connection closed by peer", "Connection reset by peer", "DistBackendError",
              "NCCL error", "Gloo", "gloo")


def failure_kind(exc: BaseException) -> str:
    """The kind of failure `exc` is, raised inside a trial's training loop."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return OUT_OF_MEMORY
    if isinstance(exc, torch.distributed.DistError) or any(
        marker in f"{type(exc).__name__}: {exc}" for marker in (*_LOST, *_LOST_PEER)
    ):
        return WORKER_LOST
    return CODE_ERROR


def failure_kind_of_error(text: str) -> str:
    """The kind of failure of a trial Tune saw end in an error (its traceback's text)."""
    if "OutOfMemoryError" in text or "MemoryError" in text:
        return OUT_OF_MEMORY
    if any(name in text for name in _LOST):
        return WORKER_LOST
    return CODE_ERROR


def describe(exc: BaseException) -> str:
    """`Type: message (file:line in function)`, the line being the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def failure_report(exc: BaseException, epoch: int) -> dict[str, Any]:
    """The last report of a trial that failed by itself with `exc`."""
    return {Report.EPOCH.value: epoch, Report.FAILURE.value: failure_kind(exc),
            Report.ERROR.value: describe(exc)}


def error_summary(error_file: str | None, error: object) -> tuple[str, str]:
    """The exception line of a trial's traceback that Tune saw end in an error (and where
    the full one is: `error_file`), and the traceback."""
    text = ""
    # The driver's copy is written before Tune's callbacks run; the synced one may not be yet.
    if error_file and Path(error_file).exists():
        text = Path(error_file).read_text()
    text = text or str(error or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    where = f" (traceback: {error_file})" if error_file else ""
    return f"{last}{where}", text


def failure_reason(failure: str | None, reason: str | None) -> str | None:
    """A failed trial's reason, led by its kind of failure ("code_error: ValueError: ...")."""
    if failure is None or failure == DIVERGED:
        return reason
    return f"{failure}: {reason}" if reason else failure
