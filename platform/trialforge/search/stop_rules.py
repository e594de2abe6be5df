"""Knowing when a sweep has found enough (`search.stop`): a target reached, trials that no
longer improve the best, or a time budget spent, whichever comes first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune.stopper import Stopper

from trialforge.search.progress import Progress
from trialforge.spec.sections import StopConfig
from trialforge.train.contract import improves


class SweepStop(Stopper):
    """Ends the search when one of `config`'s conditions fires; `reason` says which (None
    while the search goes on). Trials still running are stopped, and the champion is
    registered as usual."""

    def __init__(self, config: StopConfig, progress: Progress,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.progress, self.clock = config, progress, clock
        self.started = clock()
        self.best: float | None = None  # the best score of a trial that ended
        self.stale = 0  # trials that ended since it last improved
        self.reason: str | None = None

    def trial_ended(self, value: float | None) -> None:
        """One more trial ended, with its score (None: it has none)."""
        if improves(value, self.best, self.progress.mode):
            self.best, self.stale = value, 0
        else:
            self.stale += 1

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.reason is None:
            self.reason = self._fired()
        return self.reason is not None

    def _fired(self) -> str | None:
        config, metric, best = self.config, self.progress.metric, self.progress.best
        if config.target is not None and best is not None and (
                best.value >= config.target if self.progress.mode == "max"
                else best.value <= config.target):
            return (f"target: {metric} {best.value:.6g} ({best.trial}) reached "
                    f"{config.target:g}")
        if config.patience_trials is not None and self.stale >= config.patience_trials:
            return (f"patience: {self.stale} trials ended without improving the best "
                    f"{metric}")
        if config.time_budget_s is not None and (
                self.clock() - self.started >= config.time_budget_s):
            return f"time budget: {config.time_budget_s:g} s spent"
        return None
