"""`train.precision`: the forward pass in bf16 or fp16 under autocast, fp32 otherwise.

bf16 keeps fp32's range and needs no loss scaling (CPUs and recent GPUs run it); fp16 does,
so its backward pass goes through a `GradScaler` that skips steps whose gradients overflow.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

#: `train.precision` -> the dtype autocast computes in (None: plain fp32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and, for fp16, gradient scaling, on one device."""

    def __init__(self, precision: str, device: torch.device) -> None:
        self.dtype = PRECISIONS[precision]
        self.device_type = device.type
        self.scaler = (torch.amp.GradScaler(device.type) if self.dtype == torch.float16
                       else None)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward pass and loss in the chosen precision (fp32: nothing to enter)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, objective: torch.Tensor, optimizer: torch.optim.Optimizer,
             model: nn.Module, grad_clip: float) -> None:
        """Backward, clip the gradient norm to `grad_clip` (0: no clipping), and step."""
        if self.scaler is None:
            objective.backward()  # type: ignore[no-untyped-call]
        else:
            self.scaler.scale(objective).backward()  # type: ignore[no-untyped-call]
            self.scaler.unscale_(optimizer)  # clipping sees the true gradients
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
