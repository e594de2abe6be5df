"""Seconds a sweep's driver spends in each phase, for the summary and the benchmarks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Phases(dict[str, float]):
    """Seconds spent in each phase of a sweep (stores, ray, search, register)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = time.monotonic()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.monotonic() - began

    def total(self) -> float:
        return time.monotonic() - self._started
