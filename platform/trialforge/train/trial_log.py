"""A trial's MLflow record as it trains: its epochs' metrics and its best checkpoint.

Every MLflow write costs ~10-15 ms of Python (an ORM transaction with the sqlite store), so
epoch metrics are logged in batches, at most every `interval_s` (and always at the end).
Writes go through a `Courier`, on a thread of its own, so training never waits on MLflow:
while it is unreachable, epochs queue up and are sent in order once it is back.

Until MLflow has acknowledged them, epochs travel inside each checkpoint, which is on disk
(Ray's storage) before Ray hears of the epoch: a trial that Ray restores after a crash sends
them first, and the driver completes from the latest checkpoint the record of a trial whose
process ended first (`search.reconcile`). Epochs trained again are not logged twice (see
`TrialRun.logged_epochs`).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialforge.tracking.courier import Courier
from trialforge.tracking.outage import PATIENCE_VARIABLE, patience_s
from trialforge.tracking.outbox import Best, End, Entry, Epoch, Epochs

if TYPE_CHECKING:
    from trialforge.tracking import TrialRun
    from trialforge.train.session import Images

logger = logging.getLogger(__name__)

BEST_KEY = "best_value"  # in a checkpoint: the trial's best objective so far
PENDING_KEY = "unlogged_epochs"  # in a checkpoint: (epoch, metrics, ms) MLflow does not have yet
RUN_KEY = "unopened_run"  # in a checkpoint: how to create the trial's run, while it does not exist

#: A flush waits for MLflow's answer (milliseconds, normally) so that, while MLflow answers,
#: a checkpoint carries nothing it already has; never while it is unreachable or stuck.
FLUSH_WAIT_S = 5.0
#: A trial that ended by itself waits this long for its record to arrive, even while MLflow
#: is unreachable (a blink), before it lets Ray know it is over.
END_WAIT_S = 10.0
#: Closing (a stopped trial) waits while MLflow answers; Tune reuses the process meanwhile.
CLOSE_WAIT_S = 30.0


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
        self.courier = (
            Courier(run.tracking_uri, run.send, run.label, resync=run.forget_logged,
                    done=_discard)
            if run is not None else None
        )
        self._pending: list[Epoch] = []  # recorded, not yet handed to the courier
        self._last_flush = time.monotonic()
        self._best: Best | None = None
        self._warned = False  # that writes were left behind, once per trial

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
        """Send every queued epoch to MLflow in one call, waiting for it only while MLflow
        answers (see `FLUSH_WAIT_S`)."""
        self._hand_over()
        if self.courier is not None:
            self.courier.wait(FLUSH_WAIT_S)
            self.courier.check()

    def checkpoint_extras(self) -> dict[str, Any]:
        """What a checkpoint must carry for `restore`: every epoch MLflow has not
        acknowledged."""
        sent = self.courier.backlog() if self.courier is not None else []
        extras: dict[str, Any] = {BEST_KEY: self.best, PENDING_KEY: sent + list(self._pending)}
        recipe = self.run.pending_recipe() if self.run is not None else None
        if recipe is not None:
            extras[RUN_KEY] = recipe
        return extras

    def keep_best(
        self, checkpoint_file: Path, epoch: int, images: Images | None = None
    ) -> None:
        """The checkpoint (and images) of a new best epoch: sent now, or kept until
        `close`."""
        if self.courier is None:
            return
        self._drop_best()
        folder = Path(tempfile.mkdtemp(prefix="trialforge-best-"))
        drawn = {name: image() if callable(image) else image
                 for name, image in (images or {}).items()}
        best = Best(Path(shutil.copy2(checkpoint_file, folder)), epoch, drawn)
        if self.upload_best_at_end:
            self._best = best
        else:  # sent before Ray hears of the epoch, as its metrics are (see `flush`)
            self.courier.put(best)
            self.courier.wait(FLUSH_WAIT_S)
            self.courier.check()

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Send what is left (queued epochs, then the best checkpoint) and wait for it while
        MLflow answers; what has not arrived goes on in the background."""
        self._hand_over()
        if self.courier is None:
            return
        if self._best is not None:
            self.courier.put(self._best)
            self._best = None
        if not self.courier.wait(wait_s):
            self._warn_left("closes")
        self.courier.check()

    def finish(self, state: str, reason: str | None) -> None:
        """The trial ended by itself: send its whole record and how it ended (written once:
        by the trial or by the driver), waiting up to `END_WAIT_S` even through an outage;
        longer if its run was never created, which only this process can do (`patience_s`)."""
        self._hand_over()
        if self.run is None or self.courier is None:
            return
        if self._best is not None:
            self.courier.put(self._best)
            self._best = None
        self.courier.put(End(state, reason))
        if not self.courier.wait(END_WAIT_S, while_away=True) and self.run.run_id is None:
            limit = patience_s()
            logger.warning(
                "trial %s ended while MLflow at %s is unreachable, and MLflow has never seen "
                "it: it waits up to %.0f s (%s) for MLflow to come back, so that its record "
                "is not lost", self.courier.label, self.courier.tracking_uri, limit,
                PATIENCE_VARIABLE)
            self.courier.wait(limit, while_away=True)
        if self.courier.pending():
            self._warn_left("ended")
        self.courier.check()

    def _hand_over(self) -> None:
        if self.courier is not None and self._pending:
            self.courier.put(Epochs(tuple(self._pending)))
        self._pending = []
        self._last_flush = time.monotonic()

    def _warn_left(self, event: str) -> None:
        assert self.courier is not None
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "trial %s %s with %d epochs (%d writes in all) not yet in MLflow at %s: they are "
            "sent while this process lives, and the driver completes the record from the "
            "trial's last checkpoint at the end of the sweep", self.courier.label, event,
            len(self.courier.backlog()), self.courier.pending(), self.courier.tracking_uri)

    def _drop_best(self) -> None:
        if self._best is not None:
            _discard(self._best)
            self._best = None


def _discard(entry: Entry) -> None:
    """Delete the copy of a best checkpoint once sent (or replaced by a better one)."""
    if isinstance(entry, Best):
        shutil.rmtree(entry.path.parent, ignore_errors=True)
