"""Checkpoints load with weights_only=True: corrupt or code-carrying files are refused."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from trialforge.train.contract import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path: Path) -> None:
    state = {"model": {"w": torch.ones(2)}, "optimizer": {"state": {}}, "epoch": 3}
    loaded = load_checkpoint(save_checkpoint(state, tmp_path / "c.pt"))
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": _Exploit()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(path)


def test_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    good = save_checkpoint({"model": {"w": torch.ones(100)}, "epoch": 1}, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(truncated)
    foreign = save_checkpoint({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a trialforge checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
