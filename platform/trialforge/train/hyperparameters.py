"""An optimizer's hyperparameters across a checkpoint: what pbt/pb2 change when a trial
goes on from another trial's checkpoint with perturbed knobs."""

from __future__ import annotations

from typing import Any

import torch

#: The param-group entries a spec's knobs set (train.lr, weight_decay, momentum; betas).
HYPERPARAMETERS = ("lr", "weight_decay", "momentum", "betas")


def asked(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """What the trial's knobs ask of each param group (read before a checkpoint loads)."""
    return [{key: group[key] for key in HYPERPARAMETERS if key in group}
            for group in optimizer.param_groups]


def adopt(optimizer: torch.optim.Optimizer, wanted: list[dict[str, Any]],
          trained: list[dict[str, Any]] | None,
          schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """After `optimizer` loaded a checkpoint trained with the hyperparameters `trained`, set
    the ones `wanted` now. A learning rate is scaled (the schedule's position kept); a
    resumed trial (nothing changed) keeps every value. The moments stay the checkpoint's."""
    if trained is None or trained == wanted:
        return
    for group, new, old in zip(optimizer.param_groups, wanted, trained, strict=True):
        for key, value in new.items():
            if key == "lr":
                group["lr"] *= value / old["lr"]
            else:
                group[key] = value
    if schedule is not None:
        schedule.base_lrs = [group["lr"] for group in wanted]
