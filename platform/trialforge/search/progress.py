"""A running sweep's counts and best epoch so far, for its live progress line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trialforge.train.contract import improves


@dataclass(frozen=True)
class BestTrial:
    """A trial's score (its best epoch): value, trial, MLflow run and knobs."""

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
    running: int = 0
    completed: int = 0
    stopped_early: int = 0
    diverged: int = 0
    failed: int = 0
    epochs: int = 0
    best: BestTrial | None = None  # the best epoch seen so far, of any trial
    stage: str = "search"  # or "confirm": the top configurations over new seeds

    @property
    def done(self) -> int:
        return self.completed + self.stopped_early + self.diverged + self.failed

    def offer(self, value: Any, trial: str, params: dict[str, Any] | None = None,
              epoch: int = 0, trial_id: str = "") -> None:
        """Keep this epoch's result if it is the best of the sweep so far."""
        if improves(value, self.best.value if self.best else None, self.mode):
            self.best = BestTrial(float(value), trial, None, dict(params or {}), epoch,
                                  trial_id)

    def line(self) -> str:
        best = "-" if self.best is None else f"{self.best.value:.4f} ({self.best.trial})"
        parts = [f"trials {self.done}/{self.total} done", f"{self.running} running"]
        if self.stage != "search":
            parts[0] = f"{self.stage}: {parts[0]}"
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
SAVED_COUNTS = ("completed", "stopped_early", "diverged", "failed", "epochs", "best")
