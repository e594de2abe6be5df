"""The driver's journal of writes MLflow has not acknowledged (pure file logic)."""

from __future__ import annotations

import math
from pathlib import Path

from trialforge.tracking.journal import Journal


def test_what_was_not_acknowledged_survives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "journals" / "sweep.jsonl"
    journal = Journal(path)
    first = journal.append({"op": "open", "trial": "a"})
    second = journal.append({"op": "epoch", "trial": "a", "metrics": {"loss": math.nan}})
    third = journal.append({"op": "end", "trial": "a"})
    journal.ack([first])
    # The process dies here: no close. A half-written line is what a kill can leave.
    with open(path, "a") as file:
        file.write('{"n": 99, "entry": {"op"')
    again = Journal(path)
    pending = again.pending()
    assert [number for number, _ in pending] == [second, third]
    assert math.isnan(pending[0][1]["metrics"]["loss"])
    assert again.append({"op": "tag", "trial": "a"}) == third + 1, "numbers go on"
    again.ack([second, third, third + 1])
    again.close()
    assert not path.exists(), "a journal with nothing owed is removed"


def test_a_journal_with_writes_owed_stays_on_close(tmp_path: Path) -> None:
    path = tmp_path / "sweep.jsonl"
    journal = Journal(path)
    journal.append({"op": "open", "trial": "a"})
    journal.close()
    assert [entry for _, entry in Journal(path).pending()] == [{"op": "open", "trial": "a"}]
