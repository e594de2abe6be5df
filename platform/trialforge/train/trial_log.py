"""A trial's MLflow record as it trains: its epochs' metrics and its best checkpoint.

Every MLflow write costs ~10-15 ms of Python (an ORM transaction with the sqlite store), so
epoch metrics are logged in batches, at most every `interval_s` (and always at the end).
Epochs not yet logged travel inside each checkpoint: a trial that Ray restores after a
crash logs them first, so MLflow never misses an epoch the trial resumes after, and epochs
trained again are not logged twice (see `TrialRun.logged_epochs`).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from trialforge.tracking import TrialRun
    from trialforge.train.session import Images

BEST_KEY = "best_value"  # in a checkpoint: the trial's best objective so far
PENDING_KEY = "unlogged_epochs"  # in a checkpoint: (epoch, metrics) MLflow does not have yet


class TrialLog:
    """Batched epoch metrics and the best checkpoint of one trial, for its MLflow run.

    `upload_best_at_end` keeps the best checkpoint on local disk until `close`; a worker
    that may be killed without warning (a stopped TorchTrainer) uploads each new best.
    """

    def __init__(
        self,
        run: TrialRun | None,
        metric: str,
        mode: str,
        interval_s: float,
        upload_best_at_end: bool,
    ) -> None:
        self.run = run
        self.metric = metric
        self.mode = mode
        self.interval_s = interval_s
        self.upload_best_at_end = upload_best_at_end
        self.best: float | None = None
        self._pending: list[tuple[int, dict[str, float], int]] = []  # epoch, metrics, ms
        self._last_flush = time.monotonic()
        self._best: tuple[Path, int, dict[str, np.ndarray]] | None = None

    def restore(self, state: dict[str, Any]) -> None:
        """Pick up from a checkpoint: its best so far, and the epochs MLflow may lack."""
        self.best = state.get(BEST_KEY)
        self._pending = [(int(epoch), dict(metrics), int(stamp))
                         for epoch, metrics, stamp in state.get(PENDING_KEY, [])]
        self.flush()

    def record(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Queue an epoch's metrics (stamped now); True if it is the trial's best so far."""
        values = {k: v for k, v in metrics.items() if k != "epoch"}
        self._pending.append((epoch, values, int(time.time() * 1000)))
        value = metrics.get(self.metric, math.nan)
        if not math.isfinite(value):
            return False
        if self.best is not None and not (
            value > self.best if self.mode == "max" else value < self.best
        ):
            return False
        self.best = value
        return True

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.interval_s

    def flush(self) -> None:
        """Write every queued epoch to MLflow in one call."""
        if self.run is not None and self._pending:
            self.run.log_epochs(self._pending)
        self._pending = []
        self._last_flush = time.monotonic()

    def checkpoint_extras(self) -> dict[str, Any]:
        """What a checkpoint must carry for `restore`."""
        return {BEST_KEY: self.best, PENDING_KEY: list(self._pending)}

    def keep_best(
        self, checkpoint_file: Path, epoch: int, images: Images | None = None
    ) -> None:
        """The checkpoint (and images) of a new best epoch: uploaded now, or kept until
        `close`."""
        if self.run is None:
            return
        self._drop_best()
        folder = Path(tempfile.mkdtemp(prefix="trialforge-best-"))
        drawn = {name: image() if callable(image) else image
                 for name, image in (images or {}).items()}
        best = (Path(shutil.copy2(checkpoint_file, folder)), epoch, drawn)
        if self.upload_best_at_end:
            self._best = best
            return
        try:
            self.run.log_best_checkpoint(*best)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Write what is left: queued epochs, then the best checkpoint."""
        try:
            self.flush()
            if self.run is not None and self._best is not None:
                self.run.log_best_checkpoint(*self._best)
        finally:
            self._drop_best()

    def end(self, state: str, reason: str | None) -> None:
        """Record how the trial ended (written once: by the trial or by the driver)."""
        if self.run is not None:
            self.run.end(state, reason)

    def _drop_best(self) -> None:
        if self._best is not None:
            shutil.rmtree(self._best[0].parent, ignore_errors=True)
            self._best = None
