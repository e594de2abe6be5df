"""Naming a trial's failure from its exception or its traceback (pure logic)."""

from __future__ import annotations

import pytest
import torch

from trialforge.train.failures import (
    CODE_ERROR,
    OUT_OF_MEMORY,
    WORKER_LOST,
    describe,
    failure_kind,
    failure_kind_of_error,
)


@pytest.mark.parametrize(("error", "kind"), [
    (torch.OutOfMemoryError("CUDA out of memory"), OUT_OF_MEMORY),
    (MemoryError(), OUT_OF_MEMORY),
    (torch.distributed.DistBackendError("NCCL error: unhandled system error"), WORKER_LOST),
    (RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"), WORKER_LOST),
    (ValueError("shapes do not match"), CODE_ERROR),
    (KeyError("hidden"), CODE_ERROR),
])
def test_exceptions_raised_in_a_trial(error: BaseException, kind: str) -> None:
    assert failure_kind(error) == kind


@pytest.mark.parametrize(("traceback", "kind"), [
    ("ray.exceptions.ActorDiedError: The actor died unexpectedly", WORKER_LOST),
    ("ray.exceptions.NodeDiedError: node 1a2b was lost", WORKER_LOST),
    ("ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory",
     OUT_OF_MEMORY),
    ("ZeroDivisionError: division by zero", CODE_ERROR),
])
def test_errors_tune_saw(traceback: str, kind: str) -> None:
    assert failure_kind_of_error(f"Traceback (most recent call last):\n{traceback}") == kind


def test_a_description_names_the_exception_and_where_it_was_raised() -> None:
    try:
        {}["hidden"]
    except KeyError as exc:
        text = describe(exc)
    assert text.startswith("KeyError: 'hidden' (") and "test_failure_kinds.py:" in text
