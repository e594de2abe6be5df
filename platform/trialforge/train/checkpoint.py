"""Trial checkpoints: model, optimizer and epoch in one file, loaded without unpickling code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trialforge.errors import TrialforgeError

CHECKPOINT_FILE = "checkpoint.pt"
# In the checkpoint of a trial's last epoch: the metrics it ended with. A trial restored from
# it (its end was not recorded before the sweep's driver died) reports that end again.
FINAL_KEY = "final_metrics"


class CheckpointError(TrialforgeError):
    """A checkpoint file is missing, truncated or not a trialforge checkpoint."""


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write `state` (tensors, numbers, strings, containers of them) to `path`."""
    torch.save(state, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`: a crafted file cannot run code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a trialforge checkpoint (no 'model' state)")
    return state
