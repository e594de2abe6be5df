"""`train.compile`: the model through torch.compile, and a failure to compile as one error.

torch.compile compiles lazily, at a model's first forward pass (and again for evaluation),
so its failures surface inside the epoch loop: `compile_errors` turns them into a
`CompileError` that names the field, the cause and the fix. The trial fails with it as a
`code_error`, and a sweep whose first trials all fail so stops with that one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class CompileError(RuntimeError):
    """torch.compile could not compile a trial's model."""


def compile_model(model: nn.Module, enabled: bool) -> nn.Module:
    """`model`, compiled in place when `enabled` (its state dict keeps its keys)."""
    if enabled:
        model.compile()
    return model


@contextmanager
def compile_errors(enabled: bool, family: str) -> Iterator[None]:
    """Raise a failure of torch.compile inside the block as a `CompileError`."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as exc:
        if not enabled:
            raise
        cause = next((line.strip() for line in str(exc).splitlines() if line.strip()),
                     type(exc).__name__)
        raise CompileError(
            f"train.compile: torch.compile failed on the {family} model: {cause}; fix that "
            "(inductor needs a working C++ compiler on CPUs, Triton on GPUs) or set "
            "train.compile=false") from exc


def reset_compiled() -> None:
    """Forget the graphs compiled for the trial that ended: the next trial in this process
    compiles its own model, and torch's per-function recompile limit is never reached."""
    torch.compiler.reset()
