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

from trialforge.tracking import SweepTracker, TrackingTarget
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
    ) -> None:
        """Keep this epoch's result if it is the best of the sweep so far."""
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        best = self.best.value if self.best else None
        if best is None or (value > best if self.mode == "max" else value < best):
            self.best = BestTrial(float(value), trial, run_id, dict(params or {}), epoch)

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


def trial_outcome(last_result: dict[str, Any] | None) -> str:
    """How a trial that ended without an error ended: completed, diverged or stopped_early.

    The loop's last report says "completed" or "diverged"; a trial the scheduler stopped
    has a last report that still says "running".
    """
    state = (last_result or {}).get(STATE_KEY)
    return state if state in ("completed", "diverged") else "stopped_early"


class TrialMonitor(Callback):
    """Ends each trial's MLflow run with its state and keeps the sweep's progress."""

    def __init__(
        self,
        progress: Progress,
        tracker: SweepTracker | None,
        target: TrackingTarget | None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.progress = progress
        self.tracker = tracker
        self.target = target
        self.on_progress = on_progress
        self.outcomes: dict[str, tuple[str, str | None]] = {}  # trial id -> (state, reason)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; the progress view stays behind.
        return {**self.__dict__, "on_progress": None}

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.progress.running.add(trial.trial_id)
        self._emit()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.progress.epochs += 1
        self.progress.offer(
            result.get(self.progress.metric), str(trial), result.get(RUN_ID_KEY), trial.config,
            int(result.get("epoch", 0)),
        )
        self._emit()

    def on_trial_complete(
        self, iteration: int, trials: list[Any], trial: Any, **info: Any
    ) -> None:
        state = trial_outcome(trial.last_result)
        # A trial that ran to its end (or diverged) recorded that itself, in its last report.
        self._end(trial, state, write=state == "stopped_early")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._end(trial, "failed", _error_summary(trial))

    def _end(self, trial: Any, state: str, reason: str | None = None, write: bool = True) -> None:
        self.progress.running.discard(trial.trial_id)
        self.outcomes[trial.trial_id] = (state, reason)
        setattr(self.progress, state, getattr(self.progress, state) + 1)
        if write and self.tracker is not None and self.target is not None:
            run_id = (trial.last_result or {}).get(RUN_ID_KEY) or self.tracker.trial_run_id(
                self.target, trial.trial_id
            )
            if run_id:
                self.tracker.end_trial(run_id, state, reason)
        if state == "failed":
            logger.warning("trial %s failed: %s", trial, reason)
        self._emit()

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


def _error_summary(trial: Any) -> str:
    """The exception line of a failed trial's traceback, and where the full one is."""
    text = ""
    # The driver's copy is written before this callback runs; the synced one may not be yet.
    if trial.error_file and Path(trial.error_file).exists():
        text = Path(trial.error_file).read_text()
    text = text or str(trial.get_error() or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    where = f" (traceback: {trial.error_file})" if trial.error_file else ""
    return f"{last}{where}"
