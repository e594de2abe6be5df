"""What a writer still owes MLflow, in the order it must arrive: the pure part of `Courier`.

Entries are sent one at a time, oldest first. Epochs queued behind each other travel as one
batch (after an outage, a few requests instead of one per epoch), a newer best checkpoint
replaces one not yet sent, and an entry being sent is never changed: what is acknowledged is
exactly what was sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: One epoch's record: (epoch, metrics, timestamp in ms). The timestamp is taken when the
#: epoch ends and never changes, so a batch sent twice holds identical rows, which MLflow's
#: SQL store keeps once (its metric key is run, key, step, timestamp and value).
Epoch = tuple[int, dict[str, float], int]


@dataclass(frozen=True, eq=False)  # entries are told apart by identity
class Epochs:
    """Epoch metrics, in epoch order."""

    items: tuple[Epoch, ...]


@dataclass(frozen=True, eq=False)
class Best:
    """A best checkpoint to upload (a copy in `path`, deleted once sent or replaced), with
    its epoch's images."""

    path: Path
    epoch: int
    images: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class End:
    """How the trial ended: its state tag, reason and the run's terminal status."""

    state: str
    reason: str | None = None


@dataclass(frozen=True, eq=False)
class Call:
    """Any other write, named for the log (the driver's: ending a trial's run)."""

    what: str
    send: Callable[[], None]


Entry = Epochs | Best | End | Call


class Outbox:
    """Ordered entries not yet acknowledged by MLflow; the head may be in flight."""

    def __init__(self) -> None:
        self._entries: deque[Entry] = deque()
        self._in_flight: Entry | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entry: Entry) -> list[Best]:
        """Queue `entry`; return the best checkpoints it replaced (for their files to go)."""
        tail = self._entries[-1] if self._entries else None
        waiting = tail is not None and tail is not self._in_flight
        if isinstance(entry, Epochs):
            queued = {epoch for epoch, _, _ in self.epochs()}
            fresh = tuple(e for e in sorted_epochs(entry.items) if e[0] not in queued)
            if not fresh:
                return []
            if waiting and isinstance(tail, Epochs):
                self._entries[-1] = Epochs(tail.items + fresh)
            else:
                self._entries.append(Epochs(fresh))
            return []
        replaced: list[Best] = []
        if isinstance(entry, Best):
            replaced = [e for e in self._entries
                        if isinstance(e, Best) and e is not self._in_flight]
            self._entries = deque(e for e in self._entries if e not in replaced)
        self._entries.append(entry)
        return replaced

    def head(self) -> Entry | None:
        """The next entry to send, marked in flight until `ack` or `release`."""
        self._in_flight = self._entries[0] if self._entries else None
        return self._in_flight

    def ack(self) -> Entry:
        """The head arrived: drop it."""
        if self._in_flight is None or not self._entries or self._entries[0] is not self._in_flight:
            raise RuntimeError("ack without an entry in flight")
        self._in_flight = None
        return self._entries.popleft()

    def release(self) -> None:
        """The head did not arrive: it stays first, to be sent again."""
        self._in_flight = None

    def epochs(self) -> list[Epoch]:
        """Every epoch not acknowledged yet, in order: what a checkpoint must carry."""
        return [e for entry in self._entries if isinstance(entry, Epochs) for e in entry.items]

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries))


def sorted_epochs(epochs: Iterable[Epoch]) -> list[Epoch]:
    """`epochs` by epoch number, each once (the first record of an epoch wins)."""
    seen: dict[int, Epoch] = {}
    for epoch, metrics, stamp in epochs:
        seen.setdefault(int(epoch), (int(epoch), dict(metrics), int(stamp)))
    return [seen[epoch] for epoch in sorted(seen)]


def unlogged(epochs: Iterable[Epoch], logged_epochs: int) -> list[Epoch]:
    """The epochs after `logged_epochs` (those a run has not got), in order, each once."""
    return [e for e in sorted_epochs(epochs) if e[0] > logged_epochs]


def epoch_batches(epochs: list[Epoch], limit: int) -> list[list[Epoch]]:
    """Consecutive groups of whole epochs with at most `limit` metrics each (one epoch with
    more is a group of its own): a request either holds an epoch entirely or not at all, so
    the run's last logged epoch tells what arrived."""
    batches: list[list[Epoch]] = []
    size = 0
    for epoch in epochs:
        count = len(epoch[1])
        if not batches or size + count > limit:
            batches.append([])
            size = 0
        batches[-1].append(epoch)
        size += count
    return batches
