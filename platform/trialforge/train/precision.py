"""`train.precision`: the forward pass in bf16 or fp16 under autocast, fp32 otherwise.

bf16 keeps fp32's range and needs no loss scaling (CPUs and recent GPUs run it); fp16 does,
so its backward pass goes through a `GradScaler` that skips steps whose gradients overflow.
Both are torch's own, switched off (`enabled=False`) where the precision does not use them.
"""

from __future__ import annotations

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
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    def autocast(self) -> torch.autocast:
        """The forward pass and loss in the chosen precision (fp32: autocast off)."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, objective: torch.Tensor, optimizer: torch.optim.Optimizer,
             model: nn.Module, grad_clip: float) -> None:
        """Backward, clip the gradient norm to `grad_clip` (0: no clipping), and step."""
        self.scaler.scale(objective).backward()  # type: ignore[no-untyped-call]
        if grad_clip > 0:
            self.scaler.unscale_(optimizer)  # clipping sees the true gradients
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
