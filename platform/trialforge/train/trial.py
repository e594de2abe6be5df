"""One trial as a Tune function trainable, on either execution path.

One worker: the epoch loop runs in-process in the (reused) trainable actor, with no worker
group to start, on a CPU or on the GPU (or share of one, `train.gpu_fraction`) the actor holds.
More workers: the trainable is a thin per-trial driver that launches a `TorchTrainer` (DDP,
a GPU per worker with `use_gpu`) and forwards its workers' reports to Tune.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialforge.data.dataset import Dataset
from trialforge.spec import SweepSpec
from trialforge.streaming.stream import TRIAL_CPUS
from trialforge.train.contract import Report
from trialforge.train.failures import WORKER_LOST, failure_kind, failure_report
from trialforge.train.loop import train_loop, trial_data
from trialforge.train.session import RaySession, TrainSession, TrialSession, TuneSession

if TYPE_CHECKING:
    import torch

    from trialforge.models.backbones import Backbone
    from trialforge.streaming import StreamedData

# The per-trial driver of a TorchTrainer only waits on its workers: it must hold no CPU, not
# even a sliver (0.001 CPU leaves 1.999 and a 2-worker group on 2 CPUs never starts). Tune
# refuses an empty request, so it reserves some memory instead.
DRIVER_RESOURCES = {"cpu": 0.0, "memory": 64 * 2**20}
TRAIN_POLL_INTERVAL_S = "0.05"
# Where Tune's Train integration puts a report's checkpoint (Train's storage, not Tune's).
CHECKPOINT_PATH = "checkpoint_path"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep shares, shipped once through Ray's object store."""

    spec: SweepSpec
    storage_path: str
    # Loaded once by the driver, so trials neither read nor split it again; None when the
    # search space changes the data (then each trial loads its own).
    dataset: Dataset | None = None
    # `data.stream`: the Ray Data stream every trial iterates (no process holds it whole).
    stream: StreamedData | None = None
    # Transfer: each backbone source the space may pick, resolved once by the driver.
    backbones: Mapping[str, Backbone] = field(default_factory=dict)
    # GAN: the weights of the fixed digits classifier that scores generated images.
    judge: dict[str, torch.Tensor] | None = None
    # What every trial's run records for a replay: data fingerprint, code and packages.
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # By construction: no trial is ever handed a test split (`data.test_fraction`).
        if self.dataset is not None and self.dataset.x_test is not None:
            raise ValueError("a trial's context holds no test split: use dataset.without_test()")

    def backbone(self, spec: SweepSpec) -> Backbone | None:
        """The resolved backbone a transfer trial of `spec` starts from (None otherwise)."""
        return self.backbones.get(getattr(spec.model, "backbone", ""))

    def lineage(self, spec: SweepSpec) -> dict[str, str]:
        """Tags naming where a trial's backbone came from (registry version, file)."""
        backbone = self.backbone(spec)
        return dict(backbone.lineage) if backbone is not None else {}


def run_loop(spec: SweepSpec, session: TrialSession, context: TrialContext) -> None:
    """The epoch loop of `spec`'s family, with what the driver prepared for it."""
    if spec.model.family == "gan":
        from trialforge.train.gan_loop import gan_loop

        gan_loop(spec, session, context.dataset or trial_data(spec), context.judge)
        return
    backbone = context.backbone(spec)
    train_loop(spec, session, context.stream or context.dataset,
               backbone.builder_args() if backbone is not None else None)


def shared_dataset(spec: SweepSpec) -> Dataset | None:
    """The dataset every trial of `spec` trains on, in memory, unless the space changes data
    knobs (or it streams: `Prepared` opens the stream)."""
    if spec.data.stream or any(name.startswith("data.") for name in spec.search.space):
        return None
    return trial_data(spec)


def runs_in_process(spec: SweepSpec) -> bool:
    """A single worker needs no worker group: train inside the Tune trainable."""
    return spec.train.workers == 1


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """What Tune reserves for one trial's trainable: with a GPU, the share `gpu_fraction`."""
    if not runs_in_process(spec):
        return dict(DRIVER_RESOURCES)
    gpus = spec.train.gpus_per_trial
    cpus = worker_cpus(spec)
    return {"cpu": cpus, "gpu": gpus} if gpus else {"cpu": cpus}


def worker_cpus(spec: SweepSpec) -> float:
    """The CPU a trial's process (or each DDP worker) holds: one, less the room a stream's
    Ray Data tasks need (`streaming.TRIAL_CPUS`)."""
    return TRIAL_CPUS if spec.data.stream else 1.0


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Tune function trainable: train `context.spec` with the sampled knobs in `config`."""
    from ray import tune

    spec = context.spec.with_params(config)
    # A trial that ends by itself (all epochs, diverged, failed) says so in its last report;
    # the sweep's driver sees stops, errors and lost processes (search.monitor).
    if runs_in_process(spec):
        session = TuneSession(spec.search.objective, spec.search.direction, _node())
        if spec.train.use_gpu:
            import torch

            # Ray shows the actor only the GPU it holds (a share of it, with gpu_fraction).
            session.device = torch.device("cuda")
        try:
            with _failures_reported(session, spec.search.objectives):
                run_loop(spec, session, context)
        finally:
            _release(spec, session.device)
    else:
        _fit_torch_trainer(spec, context, tune.get_context().get_trial_id())


def _release(spec: SweepSpec, device: torch.device) -> None:
    """Hand back what a trial that is over held: the reused actor's next trial starts from
    what the last one started from (torch keeps compiled graphs and freed GPU blocks)."""
    if spec.train.compile:
        from trialforge.train.compilation import reset_compiled

        reset_compiled()
    if device.type == "cuda":
        import gc

        import torch

        gc.collect()  # the trial's model and optimizer, if a reference cycle holds them
        torch.cuda.empty_cache()


def _node() -> str:
    """The Ray node this process runs on: on a cluster, where each trial went."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


@contextlib.contextmanager
def _failures_reported(session: RaySession, objectives: list[str]) -> Iterator[None]:
    """Run a trial's loop; a failure of its own (code error, OOM) becomes its last report.

    The trial then ends normally: Tune and Train retry errors, and retrying these would fail
    the same way. A lost worker or DDP peer is raised, for them to retry from the last
    checkpoint. The session is closed either way (its last report delivered).
    """
    failure: dict[str, Any] | None = None
    try:
        yield
    except Exception as exc:
        if failure_kind(exc) == WORKER_LOST:
            raise
        # The objectives as NaN: Tune expects them in every result (Optuna gets FAIL).
        failure = {**dict.fromkeys(objectives, math.nan),
                   **failure_report(exc, session.last_epoch)}
    finally:
        session.close()
    if failure is not None:
        session.report_failure(failure)  # every rank: Train's report is a barrier


def _fit_torch_trainer(spec: SweepSpec, context: TrialContext, trial_id: str) -> None:
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    # Train V2's controller polls its workers every 2 s by default, and each report waits for
    # the poll; fit() passes this variable on to the controller it starts.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", TRAIN_POLL_INTERVAL_S)
    stream = context.stream
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={"spec": spec, "context": context},
        # Train gives each worker its share of each (`TrainSession.stream_shard`).
        datasets={"train": stream.train, "val": stream.val} if stream is not None else None,
        scaling_config=ray.train.ScalingConfig(
            num_workers=spec.train.workers, use_gpu=spec.train.use_gpu,
            # A GPU worker holds no CPU (Train's default), so a stream's tasks find some.
            resources_per_worker=None if spec.train.use_gpu else {"CPU": worker_cpus(spec)},
        ),
        run_config=ray.train.RunConfig(
            # A stable name: a restarted trial's trainer finds its checkpoints and resumes.
            name=f"train-{trial_id}",
            storage_path=str(Path(context.storage_path)),
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]  # a Train callback
            # The best-scored checkpoint is kept (with the latest): the driver records it.
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=spec.search.objective,
                checkpoint_score_order=spec.search.direction),
            failure_config=ray.train.FailureConfig(max_failures=spec.train.max_failures),
        ),
    )
    result = trainer.fit()
    # Train hands each report to Tune through a queue that fit() may return before it drains:
    # the last report, which says how the trial ended, can be lost. It is sent again, marked:
    # the driver takes an epoch it already has once.
    if result.metrics:
        from ray import tune

        last = {**result.metrics, Report.REPEATED.value: True}
        if result.checkpoint is not None:
            last[CHECKPOINT_PATH] = result.checkpoint.path
        tune.report(last)


def _train_worker(config: dict[str, Any]) -> None:
    """One DDP worker; rank 0 alone attaches the checkpoint to each report."""
    spec: SweepSpec = config["spec"]
    context: TrialContext = config["context"]
    session = TrainSession(spec.search.objective, spec.search.direction, _node())
    with _failures_reported(session, spec.search.objectives):
        run_loop(spec, session, context)
