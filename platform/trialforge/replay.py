"""Replay a trial from its MLflow record (`trialforge replay RUN_ID`) and check that every
epoch's metrics come out exactly as recorded.

The run's tags hold the trial's whole spec (knobs, seed, split seed), the data's fingerprint
and the code's and packages' versions (`tracking.provenance`). The trial is trained again in
this process, on the CPU, with deterministic algorithms and one intra-op thread (what a
one-CPU Ray trial runs with), for as many epochs as the run recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trialforge.errors import DataError, NotFoundError, TrialforgeError
from trialforge.spec import SweepSpec
from trialforge.tracking.provenance import (
    TAG_CODE,
    TAG_DATA,
    TAG_PACKAGES,
    TAG_TRIAL_SPEC,
    data_fingerprint,
)
from trialforge.tracking.tags import EPOCH_MARKER
from trialforge.train.contract import TrialCheckpoint, TrialState

#: Metrics that measure the machine, not the model: never compared.
MACHINE_METRICS = frozenset({"epoch_seconds", "latency_us", "memory_mb"})


class ReplayMismatch(TrialforgeError):
    """A replayed epoch's metric differs from the one recorded."""

    exit_code = 1


@dataclass(frozen=True)
class Replayed:
    """A replay that matched: the epochs and metrics compared."""

    run_id: str
    epochs: int
    metrics: list[str]


def replay_run(run_id: str, tracking_uri: str,
               progress: Callable[[str], None] = lambda line: None) -> Replayed:
    """Retrain run `run_id`'s trial and compare every epoch with its record; a difference
    is a `ReplayMismatch` naming the first epoch, metric and both values."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise NotFoundError(f"no run {run_id!r} in {tracking_uri}: {exc.message}") from None
    tags = run.data.tags
    if TAG_TRIAL_SPEC not in tags:
        raise NotFoundError(f"run {run_id} has no trial record to replay (not a trial run, or "
                            "made before trialforge recorded its spec)")
    spec = SweepSpec.model_validate(json.loads(tags[TAG_TRIAL_SPEC]))
    _check_replayable(spec)
    now = data_fingerprint(spec.data)
    if now != tags.get(TAG_DATA):
        raise DataError(f"data.path {spec.data.path or spec.data.dataset!r} changed since run "
                        f"{run_id}: its fingerprint was {tags.get(TAG_DATA)}, it is {now} now; "
                        "replay needs the data the trial trained on")
    progress(f"replaying run {run_id}: {tags.get(TAG_CODE, 'code version unknown')}; "
             f"recorded with {tags.get(TAG_PACKAGES, '{}')}")
    epochs = max((m.step for m in client.get_metric_history(run_id, EPOCH_MARKER)), default=0)
    replayed = _train(spec, epochs, tracking_uri)
    compared = sorted(set(replayed[0]) - MACHINE_METRICS - {"epoch"}) if replayed else []
    recorded = {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
                for key in compared}
    for epoch, metrics in enumerate(replayed, start=1):
        for key in compared:
            was, now_value = recorded[key].get(epoch), metrics[key]
            if was is None or not _same(was, now_value):
                raise ReplayMismatch(
                    f"epoch {epoch}: {key} was {was!r}, replayed {now_value!r} (run {run_id}); "
                    f"the epochs before matched")
        progress(f"epoch {epoch}: {len(compared)} metrics match")
    return Replayed(run_id, len(replayed), compared)


def _check_replayable(spec: SweepSpec) -> None:
    if spec.train.workers > 1:
        raise TrialforgeError(f"replay retrains one-worker trials; this one ran on "
                              f"{spec.train.workers} DDP workers")
    if spec.data.stream:
        raise TrialforgeError("replay retrains in-memory trials; this one streamed its data "
                              "through Ray Data")
    if spec.model.family == "gan":
        raise TrialforgeError("replay retrains the epoch loop's families; a GAN's is not "
                              "replayed")


def _same(recorded: float, replayed: float) -> bool:
    return recorded == replayed or (math.isnan(recorded) and math.isnan(replayed))


def _train(spec: SweepSpec, epochs: int, tracking_uri: str) -> list[dict[str, float]]:
    """Each epoch's metrics of `spec`'s trial, trained `epochs` epochs here, deterministically
    on the CPU."""
    from trialforge.registry.backbones import resolve_backbones
    from trialforge.train.trial import TrialContext, run_loop

    spec = spec.with_params({"train.use_gpu": False})
    context = TrialContext(spec, "", backbones=resolve_backbones(spec, tracking_uri))
    session = _ReplaySession(epochs)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        run_loop(spec, session, context)
    except _Enough:
        pass
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return session.metrics


class _Enough(Exception):
    """The replay has trained as many epochs as the run recorded."""


class _ReplaySession:
    """The trial session of a replay: one CPU worker keeping each epoch's metrics."""

    rank = 0
    world_size = 1
    device = torch.device("cpu")

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.metrics: list[dict[str, float]] = []

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        return None

    def restored_checkpoint(self) -> TrialCheckpoint | None:
        return None

    def report(self, metrics: dict[str, float], checkpoint: TrialCheckpoint | None = None,
               state: TrialState = TrialState.RUNNING, figures: Any = None) -> None:
        self.metrics.append(dict(metrics))
        if len(self.metrics) >= self.epochs:
            raise _Enough

    def check_stopped(self) -> None:
        return None

    def stream_shard(self, stream: Any, split: str) -> Any:
        raise AssertionError("replay refuses streamed trials")
