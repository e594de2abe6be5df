"""Watches a sweep's trials from the driver: progress, and how each trial ended.

A Tune callback, so it sees what no trial can see of itself: being stopped by the scheduler,
or dying with its worker. It ends each trial's MLflow run with the right state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from trialforge.tracking import SweepTracker, TrackingTarget
from trialforge.train.failures import (
    CODE_ERROR,
    DIVERGED,
    ERROR_KEY,
    FAILURE_KEY,
    failure_kind_of_error,
)
from trialforge.train.session import RUN_ID_KEY, STATE_KEY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BestTrial:
    """The best epoch of the sweep so far: its value, trial, MLflow run and knobs."""

    value: float
    trial: str
    run_id: str | None
    params: dict[str, Any]
    epoch: int = 0
    trial_id: str = ""


@dataclass
class Progress:
    """Counts of a running sweep, for a live progress line."""

    total: int
    metric: str
    mode: str
    max_epochs: int
    running: set[str] = field(default_factory=set)
    completed: int = 0
    stopped_early: int = 0
    diverged: int = 0
    failed: int = 0
    epochs: int = 0
    best: BestTrial | None = None

    @property
    def done(self) -> int:
        return self.completed + self.stopped_early + self.diverged + self.failed

    def offer(
        self,
        value: Any,
        trial: str,
        run_id: str | None = None,
        params: dict[str, Any] | None = None,
        epoch: int = 0,
        trial_id: str = "",
    ) -> None:
        """Keep this epoch's result if it is the best of the sweep so far."""
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        best = self.best.value if self.best else None
        if best is None or (value > best if self.mode == "max" else value < best):
            self.best = BestTrial(float(value), trial, run_id, dict(params or {}), epoch,
                                  trial_id)

    def line(self) -> str:
        best = "-" if self.best is None else f"{self.best.value:.4f} ({self.best.trial})"
        parts = [f"trials {self.done}/{self.total} done", f"{len(self.running)} running"]
        if self.stopped_early:
            parts.append(f"{self.stopped_early} stopped early")
        if self.diverged:
            parts.append(f"{self.diverged} diverged")
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"epochs {self.epochs}")
        parts.append(f"best {self.metric} {best}")
        return " | ".join(parts)


# What a resumed sweep's progress takes over from before: the counts and the best trial.
_SAVED_COUNTS = ("completed", "stopped_early", "diverged", "failed", "epochs", "best")


def trial_outcome(last_result: dict[str, Any] | None) -> str:
    """How a trial that ended without an error ended: completed, diverged, failed (a code
    error or OOM it reported itself) or stopped_early.

    The loop's last report says "completed", "diverged" or "failed"; a trial the scheduler
    stopped has a last report that still says "running".
    """
    state = (last_result or {}).get(STATE_KEY)
    return state if state in ("completed", "diverged", "failed") else "stopped_early"


@dataclass(frozen=True)
class TrialEnd:
    """How one trial ended, as the catalog records it."""

    trial_id: str
    run_id: str | None
    state: str
    failure: str | None  # diverged, oom, worker_lost or code_error (train.failures)
    reason: str | None
    epochs: int
    value: float | None


class TrialMonitor(Callback):
    """Ends each trial's MLflow run with its state and keeps the sweep's progress; stops the
    sweep (`stop_error`) when its first `fail_fast` trials fail with the same code error."""

    def __init__(
        self,
        progress: Progress,
        tracker: SweepTracker | None,
        target: TrackingTarget | None,
        on_progress: Callable[[Progress], None] | None = None,
        on_trial_end: Callable[[TrialEnd], None] | None = None,
        fail_fast: int = 0,
    ) -> None:
        self.progress = progress
        self.tracker = tracker
        self.target = target
        self.on_progress = on_progress
        self.on_trial_end = on_trial_end
        self.fail_fast = fail_fast
        self.outcomes: dict[str, tuple[str, str | None]] = {}  # trial id -> (state, reason)
        self.first_errors: list[str | None] = []  # code errors of the first trials to end
        self.stop_error: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; the live views stay behind.
        return {**self.__dict__, "on_progress": None, "on_trial_end": None}

    def get_state(self) -> dict[str, Any]:
        # Saved in Tune's experiment checkpoint: a resumed sweep counts (and knows the best
        # of) the trials that ended before its driver died.
        return {"progress": {key: getattr(self.progress, key) for key in _SAVED_COUNTS},
                "outcomes": dict(self.outcomes), "first_errors": list(self.first_errors)}

    def set_state(self, state: dict[str, Any]) -> None:
        for key, value in state["progress"].items():
            setattr(self.progress, key, value)
        self.outcomes.update(state["outcomes"])
        self.first_errors = list(state.get("first_errors", []))

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.progress.running.add(trial.trial_id)
        self._emit()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if result.get(STATE_KEY) == "failed":
            return  # not an epoch: the failure a trial reported (see on_trial_complete)
        self.progress.epochs += 1
        self.progress.offer(
            result.get(self.progress.metric), str(trial), result.get(RUN_ID_KEY), trial.config,
            int(result.get("epoch", 0)), trial.trial_id,
        )
        self._emit()

    def on_trial_complete(
        self, iteration: int, trials: list[Any], trial: Any, **info: Any
    ) -> None:
        last = trial.last_result or {}
        state = trial_outcome(last)
        if state == "failed":
            self._end(trial, state, last.get(FAILURE_KEY), last.get(ERROR_KEY))
        else:
            # A trial that ran to its end (or diverged) recorded that itself, in its last
            # report; the driver alone sees that the scheduler stopped one.
            self._end(trial, state, DIVERGED if state == "diverged" else None,
                      write=state == "stopped_early")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        summary, text = _error_summary(trial)
        self._end(trial, "failed", failure_kind_of_error(text), summary)

    def _end(self, trial: Any, state: str, failure: str | None, reason: str | None = None,
             write: bool = True) -> None:
        self.progress.running.discard(trial.trial_id)
        self.outcomes[trial.trial_id] = (state, reason)
        setattr(self.progress, state, getattr(self.progress, state) + 1)
        last = trial.last_result or {}
        run_id = last.get(RUN_ID_KEY)
        if self.tracker is not None and self.target is not None:
            run_id = run_id or self.tracker.trial_run_id(self.target, trial.trial_id)
            if write and run_id:
                self.tracker.end_trial(run_id, state, _with_kind(failure, reason), failure)
        if state == "failed":
            logger.warning("trial %s failed (%s): %s", trial, failure, reason)
        if len(self.first_errors) < self.fail_fast:
            self.first_errors.append(reason if failure == CODE_ERROR else None)
            if (len(self.first_errors) == self.fail_fast and self.first_errors[0]
                    and len(set(self.first_errors)) == 1):
                self.stop_error = self.first_errors[0]
        if self.on_trial_end is not None:
            value = last.get(self.progress.metric)
            self.on_trial_end(TrialEnd(
                trial.trial_id, run_id, state, failure, reason, int(last.get("epoch", 0)),
                float(value) if isinstance(value, (int, float)) else None))
        self._emit()

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


class FailFast(Stopper):
    """Stops the whole sweep once the monitor has seen its first trials fail alike."""

    def __init__(self, monitor: TrialMonitor) -> None:
        self.monitor = monitor

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.monitor.stop_error is not None


def _with_kind(failure: str | None, reason: str | None) -> str | None:
    """A failed run's reason, led by its kind of failure ("code_error: ValueError: ...")."""
    if failure is None or failure == DIVERGED:
        return reason
    return f"{failure}: {reason}" if reason else failure


def _error_summary(trial: Any) -> tuple[str, str]:
    """The exception line of a failed trial's traceback (and where the full one is), and
    the traceback."""
    text = ""
    # The driver's copy is written before this callback runs; the synced one may not be yet.
    if trial.error_file and Path(trial.error_file).exists():
        text = Path(trial.error_file).read_text()
    text = text or str(trial.get_error() or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    where = f" (traceback: {trial.error_file})" if trial.error_file else ""
    return f"{last}{where}", text
