"""Whether a Ray cluster has the GPUs a spec's trials hold: a GPU sweep on a cluster without
them would wait for them forever, so it is refused at once with one line."""

from __future__ import annotations

from collections.abc import Mapping

from trialforge.errors import SpecError
from trialforge.spec.sections import TrainConfig


def require_gpus(train: TrainConfig, resources: Mapping[str, float], where: str,
                 remedy: str) -> None:
    """Raise a `SpecError` when `resources` (Ray's totals at `where`) hold fewer GPUs than one
    trial of `train` needs; `remedy` is the fix besides `train.use_gpu=false`."""
    need = train.gpus_per_trial
    gpus = resources.get("GPU", 0.0)
    if need and gpus < need:
        raise SpecError(
            f"train.use_gpu: a trial needs {need:g} GPU, but {where} sees {gpus:g} GPU and "
            f"{resources.get('CPU', 0.0):g} CPU: set train.use_gpu=false, or {remedy}")
