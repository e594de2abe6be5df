"""What a sweep's driver makes ready before its trials start: the MLflow parent run and its
writer, the shared dataset, transfer backbones and a GAN's judge. Inputs a user points at (files,
registry models) are checked before anything is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trialforge.data.dataset import Dataset
from trialforge.errors import SpecError
from trialforge.home import Home
from trialforge.models.backbones import Backbone
from trialforge.registry.backbones import resolve_backbones
from trialforge.spec import SweepSpec
from trialforge.streaming import StreamedData, check_stream, open_stream
from trialforge.tasks import Task, check_metric
from trialforge.tracking import SweepRecorder, TrackingTarget, open_sweep_run
from trialforge.tracking.provenance import sweep_provenance
from trialforge.train.loop import trial_layout
from trialforge.train.trial import TrialContext, shared_dataset

if TYPE_CHECKING:
    import torch

    from trialforge.catalog import Catalog
    from trialforge.search.phases import Phases

class Prepared:
    """What the driver makes ready before trials start (stores, data, backbones, a GAN's
    judge); filled as it goes, so a failure part-way still leaves what needs closing."""

    target: TrackingTarget | None = None
    recorder: SweepRecorder | None = None
    dataset: Dataset | None = None
    stream: StreamedData | None = None
    backbones: dict[str, Backbone] | None = None
    judge: dict[str, torch.Tensor] | None = None
    _inputs_ready = False

    def fill(
        self, spec: SweepSpec, home: Home, sweep_id: str, catalog: Catalog, track: bool,
        phases: Phases, resumed: TrackingTarget | None = None,
    ) -> None:
        """Open the sweep's parent run (or take a `resumed` sweep's) and its writer, then
        the inputs."""
        with phases("stores"):
            if resumed is not None:
                self.target = resumed
            elif track:
                self.target = open_sweep_run(
                    home.tracking_uri, spec.name, sweep_id, spec.to_yaml(),
                    artifact_root=home.artifacts if home.embedded_tracking else None,
                )
                catalog.update_sweep(
                    sweep_id, mlflow_experiment_id=self.target.experiment_id,
                    mlflow_parent_run_id=self.target.parent_run_id,
                )
            if self.target is not None:
                self.recorder = SweepRecorder(
                    self.target, home.root / "journals" / f"{sweep_id}.jsonl",
                    spec.search.objective, resumed=resumed is not None)
        with phases("data"):
            self.fill_inputs(spec, home)

    def fill_inputs(self, spec: SweepSpec, home: Home) -> None:
        """Load the shared dataset, resolve the backbones and fit a GAN's judge (once)."""
        if self._inputs_ready:
            return
        if spec.data.stream:  # its files are checked now, and read once Ray is up
            task: Task | None = check_stream(spec.data, trial_layout(spec))
        else:
            self.dataset = shared_dataset(spec)
            task = self.dataset.task if self.dataset is not None else None
        if task is not None and spec.task is None:
            check_task_metrics(spec, task)
        self.backbones = resolve_backbones(spec, home.tracking_uri)
        if spec.model.family == "gan":
            self.judge = _gan_judge(spec, self.dataset, home)
        self._inputs_ready = True

    def context(self, spec: SweepSpec, home: Home) -> TrialContext:
        """What every trial of the sweep shares (shipped once through Ray's object store);
        Ray is connected by now, so a stream is opened here."""
        if spec.data.stream and self.stream is None:
            self.stream = open_stream(spec.data, trial_layout(spec), seed=spec.seed,
                                      trials=spec.search.concurrency)
        return TrialContext(spec=spec, storage_path=home.ray_results,
                            dataset=self.dataset, stream=self.stream,
                            backbones=self.backbones or {}, judge=self.judge,
                            provenance=sweep_provenance(spec))


def _gan_judge(spec: SweepSpec, dataset: Dataset | None, home: Home) -> dict[str, torch.Tensor]:
    """The fixed classifier that scores a GAN's images, trained once per dataset and cached
    under the home, so every trial of every sweep is judged by the same one."""
    from trialforge.train.judge import cached_judge
    from trialforge.train.loop import trial_data

    data = dataset or trial_data(spec)
    return cached_judge(home.root / "cache", data.x_train, data.y_train, data.num_classes,
                        spec.seed)


def check_task_metrics(spec: SweepSpec, task: Task) -> None:
    """A table's task is known once read: its objectives must fit it."""
    for metric in spec.search.objectives:
        try:
            check_metric(task, metric)
        except ValueError as exc:
            raise SpecError(f"search.metric: {exc} (data.target {spec.data.target!r} makes "
                            f"it {task}; set data.task to choose)") from None
