"""The outbox's order and bookkeeping: what is sent, in which order, and what a checkpoint
carries (pure logic, no MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialforge.tracking.outbox import (
    Best,
    End,
    Epoch,
    Epochs,
    Outbox,
    epoch_batches,
    sorted_epochs,
    unlogged,
)


def epochs(*numbers: int) -> Epochs:
    return Epochs(tuple((n, {"loss": 1.0 / n}, 1000 * n) for n in numbers))


def numbers(entry: object) -> list[int]:
    assert isinstance(entry, Epochs)
    return [e for e, _, _ in entry.items]


def test_epochs_queued_behind_each_other_travel_as_one_batch_in_order() -> None:
    box = Outbox()
    box.put(epochs(1, 2))
    box.put(epochs(3))
    box.put(epochs(2, 4))  # 2 is queued already: once
    assert len(box) == 1
    assert numbers(box.head()) == [1, 2, 3, 4]
    assert [e for e, _, _ in box.epochs()] == [1, 2, 3, 4]


def test_an_entry_in_flight_never_changes_so_ack_drops_exactly_what_was_sent() -> None:
    box = Outbox()
    box.put(epochs(1, 2))
    sending = box.head()
    box.put(epochs(3))  # while 1-2 are on the wire
    assert numbers(sending) == [1, 2]
    assert box.ack() is sending
    assert [e for e, _, _ in box.epochs()] == [3], "epoch 3 still waits"
    assert numbers(box.head()) == [3]


def test_a_failed_send_stays_first_and_later_entries_keep_their_order() -> None:
    box = Outbox()
    box.put(epochs(1))
    first = box.head()
    box.put(End("completed"))
    box.release()  # MLflow did not answer
    box.put(epochs(2))  # behind the end, not merged into the head
    assert box.head() is first
    box.ack()
    assert isinstance(box.head(), End)
    box.ack()
    assert numbers(box.head()) == [2]
    assert [e for e, _, _ in box.epochs()] == [2]


def test_a_newer_best_checkpoint_replaces_one_not_yet_sent(tmp_path: Path) -> None:
    box = Outbox()
    old, newer, newest = (Best(tmp_path / f"{n}.pt", n) for n in (1, 2, 3))
    box.put(old)
    assert box.head() is old  # in flight: kept
    assert box.put(newer) == []
    assert box.put(epochs(5)) == []
    assert box.put(newest) == [newer]
    queued = list(box)
    assert (queued[0], queued[-1], len(queued)) == (old, newest, 3)


def test_ack_without_a_send_is_a_bug() -> None:
    box = Outbox()
    box.put(epochs(1))
    with pytest.raises(RuntimeError):
        box.ack()


def test_unlogged_sorts_dedupes_and_skips_what_the_run_has() -> None:
    records: list[Epoch] = [(3, {"a": 3.0}, 30), (1, {"a": 1.0}, 10), (2, {"a": 2.0}, 20),
                            (3, {"a": 9.0}, 99)]
    assert sorted_epochs(records) == [(1, {"a": 1.0}, 10), (2, {"a": 2.0}, 20),
                                      (3, {"a": 3.0}, 30)]
    assert [e for e, _, _ in unlogged(records, 1)] == [2, 3]


def test_batches_hold_whole_epochs() -> None:
    records: list[Epoch] = [(n, {f"m{i}": 0.0 for i in range(4)}, n) for n in range(1, 6)]
    batches = epoch_batches(records, limit=10)
    assert [[e for e, _, _ in batch] for batch in batches] == [[1, 2], [3, 4], [5]]
    big: list[Epoch] = [(1, {f"m{i}": 0.0 for i in range(12)}, 1), (2, {"m": 0.0}, 2)]
    assert [[e for e, _, _ in b] for b in epoch_batches(big, limit=10)] == [[1], [2]]
