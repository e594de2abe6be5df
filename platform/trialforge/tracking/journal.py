"""The driver's writes to MLflow, journaled on local disk until MLflow has them.

One JSON line per write, then one per batch that arrived; what a killed driver left is sent
first by the next (`sweep resume`). Lines go to the operating system at once, so a killed
process loses none (a power loss may lose the last ones, which a resumed trial reports again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Entry = dict[str, Any]


class Journal:
    """Writes not yet acknowledged by MLflow, in order, on disk at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: dict[int, Entry] = _read(path)
        self._next = max(self._pending, default=0) + 1
        path.parent.mkdir(parents=True, exist_ok=True)
        # Compacted (what arrived before is dropped), then held open until `close`.
        temporary = path.with_suffix(".tmp")
        self._file = open(temporary, "w", encoding="utf-8")  # noqa: SIM115
        for number, entry in sorted(self._pending.items()):
            self._write({"n": number, "entry": entry})
        os.replace(temporary, path)

    def pending(self) -> list[tuple[int, Entry]]:
        """The writes still owed, oldest first (those a previous driver left too)."""
        with self._lock:
            return sorted(self._pending.items())

    def append(self, entry: Entry) -> int:
        """Record a write before it is sent; its number, for `ack`."""
        with self._lock:
            number, self._next = self._next, self._next + 1
            self._pending[number] = entry
            self._write({"n": number, "entry": entry})
            return number

    def ack(self, numbers: list[int]) -> None:
        """These writes arrived."""
        with self._lock:
            for number in numbers:
                self._pending.pop(number, None)
            self._write({"ack": numbers})

    def close(self) -> None:
        """Close the file; remove it when nothing is owed."""
        with self._lock:
            self._file.close()
            if not self._pending:
                self.path.unlink(missing_ok=True)

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line, allow_nan=True) + "\n")
        self._file.flush()  # to the OS: survives the process being killed


def _read(path: Path) -> dict[int, Entry]:
    pending: dict[int, Entry] = {}
    if not path.exists():
        return pending
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s: skipping a line cut short by a crash", path)
            continue
        if "n" in record:
            pending[int(record["n"])] = record["entry"]
        for number in record.get("ack", []):
            pending.pop(int(number), None)
    return pending

