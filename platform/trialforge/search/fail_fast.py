"""Stopping a sweep whose first trials all fail with the same error: a bug, not bad luck."""

from __future__ import annotations

from typing import Any

from ray.tune.stopper import Stopper

from trialforge.train.failures import CODE_ERROR


class FailFast(Stopper):
    """Stops the whole sweep once its first `count` trials to end all failed with the same
    code error (`error`); 0 never stops it."""

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.first_errors: list[str | None] = []  # code errors of the first trials to end
        self.error: str | None = None

    def offer(self, failure: str | None, reason: str | None) -> None:
        """One more trial ended: its kind of failure (None if it did not fail), and why."""
        if len(self.first_errors) >= self.count:
            return
        self.first_errors.append(reason if failure == CODE_ERROR else None)
        if (len(self.first_errors) == self.count and self.first_errors[0]
                and len(set(self.first_errors)) == 1):
            self.error = self.first_errors[0]

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.error is not None
