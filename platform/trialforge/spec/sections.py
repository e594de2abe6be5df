"""The `data`, `train`, `search` and `register` sections of a spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from trialforge.data.names import FILE_DATASETS, STREAMED_DATASETS
from trialforge.spec.section import Section
from trialforge.spec.space import LogUniform, ParamSpace, Uniform
from trialforge.tasks import DEFAULT_METRIC, Mode, Task, check_metric, task_metrics


class DataConfig(Section):
    """Which data, and how it is split. File datasets read `path`; the others are built in."""

    dataset: Literal["digits", "series", "text", "table", "npz", "images"] = "digits"
    path: str | None = Field(None, description="table/npz/images/text: the file or folder")
    target: str | None = Field(None, description="table: the target column")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="table/npz: auto = classification for integer or text targets"
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="a test split carved off before validation: no trial "
        "sees it, and the champion is scored on it once (0: none)")
    window: int = Field(32, ge=2, le=100_000, description="series/text: steps per example")
    image_size: int = Field(32, ge=4, le=1024, description="images: resized to this square")
    classes: list[int] | None = Field(None, description="digits: keep only these labels")
    train_per_class: int | None = Field(
        None, ge=1, description="digits/images: keep this many training examples per class")
    stream: bool = Field(
        False, description="images/table: read with Ray Data as trials iterate, never held "
        "whole in memory (the split is by file)")
    split_seed: int | None = Field(
        None, description="the split's seed (default: the spec's seed); a confirm stage keeps "
        "the search's split whatever the trial's seed")

    @model_validator(mode="after")
    def _path_given(self) -> DataConfig:
        if self.dataset in FILE_DATASETS and not self.path:
            raise ValueError(f"dataset {self.dataset!r} reads files: set data.path")
        if self.dataset == "table" and not self.target:
            raise ValueError("dataset 'table' needs data.target, the name of the target column")
        if self.stream and self.dataset not in STREAMED_DATASETS:
            raise ValueError(f"stream: dataset {self.dataset!r} is read into memory; only "
                             f"{' and '.join(sorted(STREAMED_DATASETS))} stream")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction = "
                             f"{self.val_fraction + self.test_fraction:g} leaves nothing to "
                             "train on: keep their sum below 1")
        if self.stream and self.test_fraction:
            raise ValueError("stream: test_fraction holds a test split out in memory; a "
                             "streamed split has none yet: set data.test_fraction=0")
        if self.stream and self.train_per_class is not None:
            raise ValueError("stream: train_per_class picks few labels in memory; drop one")
        if self.path:
            # Relative to where the sweep is started; absolute from then on, so trials
            # running in other folders (Ray workers) read the same files.
            self.path = str(Path(self.path).expanduser().resolve())
        return self


class TrainConfig(Section):
    epochs: int = Field(12, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    workers: int = Field(1, ge=1, description="> 1: data-parallel (DDP) with a TorchTrainer")
    use_gpu: bool = False
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="the forward pass under autocast; fp16 with a gradient scaler")
    compile: bool = Field(
        False, description="torch.compile the model (a failure to compile fails the trial "
        "with one error naming the cause)")
    channels_last: bool | None = Field(
        None, description="image models in channels-last memory (default: on a GPU only)")
    data_on_device: bool | None = Field(
        None, description="the whole split on the GPU once (default: when it fits in a quarter "
        "of the trial's GPU memory; else batches come from pinned host memory)")
    gpu_fraction: float = Field(
        1.0, gt=0.0, le=1.0,
        description="use_gpu with one worker: the share of a GPU each trial holds (0.25: four "
        "trials share one)")
    max_failures: int = Field(
        1, ge=0, description="restarts of a trial whose worker died (from its last checkpoint)"
    )
    l1: float = Field(0.0, ge=0.0, description="L1 penalty on the weights, added to the loss")
    grad_clip: float = Field(0.0, ge=0.0, description="max gradient norm; 0 = no clipping")
    lr_schedule: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(5, ge=1, description="lr_schedule=step: epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="lr_schedule=step: decay factor")
    patience: int | None = Field(
        None, ge=1, description="stop when the metric has not improved for this many epochs"
    )

    @property
    def gpus_per_trial(self) -> float:
        """The GPUs one trial holds: its share of one, or one per DDP worker (0 on CPUs)."""
        if not self.use_gpu:
            return 0.0
        return self.gpu_fraction if self.workers == 1 else float(self.workers)

    @model_validator(mode="after")
    def _whole_gpus_for_ddp(self) -> TrainConfig:
        if self.gpu_fraction < 1.0 and self.workers > 1:
            raise ValueError(
                f"gpu_fraction={self.gpu_fraction} shares a GPU between one-worker trials; with "
                f"workers={self.workers} each DDP worker holds a whole GPU: set "
                "train.gpu_fraction=1 or train.workers=1")
        return self


#: Schedulers that evolve a population: trials exploit each other's checkpoints.
POPULATION_SCHEDULERS = ("pbt", "pb2")
#: The knobs pbt/pb2 may change while a trial trains: they keep its weights' shapes, so the
#: checkpoint it exploits still loads. Every other searched knob is drawn once and, on an
#: exploit, copied with the checkpoint from the trial it came from.
MUTABLE_KNOBS = frozenset({
    "train.lr", "train.weight_decay", "train.momentum", "train.l1", "train.grad_clip",
    "train.batch_size", "model.dropout", "model.backbone_lr", "model.g_dropout",
    "model.d_dropout",
})


class SchedulerConfig(Section):
    """Which trials to stop early (asha, hyperband, median, fifo: never), or to evolve (pbt,
    pb2: a weak trial takes a strong one's checkpoint and perturbs its knobs), or for several
    metrics, which to stop by their Pareto rank (pareto, the default there)."""

    type: Literal["asha", "fifo", "hyperband", "median", "pareto", "pbt", "pb2"] = "asha"
    grace_period: int = Field(1, ge=1, description="epochs before a trial may be stopped")
    reduction_factor: float = Field(3.0, gt=1.0)
    perturbation_interval: int = Field(
        2, ge=1, description="pbt/pb2: epochs between a trial's chances to exploit another")
    quantile_fraction: float = Field(
        0.25, gt=0.0, le=0.5, description="pbt/pb2: the bottom share of trials that exploit "
        "the top share")
    resample_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="pbt: the chance a mutated knob is drawn anew from "
        "its space rather than perturbed")

    @property
    def evolves(self) -> bool:
        """Population-based: a trial's knobs change while it trains."""
        return self.type in POPULATION_SCHEDULERS


#: `search.sampler`s that take several objectives, and those that take one.
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "gp", "nsga2", "qmc")
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)


class ConfirmConfig(Section):
    """After the search, retrain its `top_k` configurations with `seeds` new seeds each (a
    seed changes the weights' initialisation and the data's order, never the split); the
    champion is the configuration with the best mean."""

    top_k: int = Field(3, ge=1, description="the search's best configurations to retrain")
    seeds: int = Field(3, ge=2, description="new seeds per configuration (2 or more: an "
                       "interval needs a spread)")


class StopConfig(Section):
    """When a sweep has found enough: any condition that fires ends the search."""

    target: float | None = Field(
        None, description="the objective's value (in its direction) that is good enough")
    patience_trials: int | None = Field(
        None, ge=1, description="trials that may end in a row without improving the best")
    time_budget_s: float | None = Field(None, gt=0, description="seconds the search may take")

    @model_validator(mode="after")
    def _some_condition(self) -> StopConfig:
        if self.target is None and self.patience_trials is None and self.time_budget_s is None:
            raise ValueError("give at least one of target, patience_trials, time_budget_s")
        return self


class Bound(Section):
    """Bounds on one reported metric, each inclusive: a trial outside is infeasible."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {max: 50000}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class SearchConfig(Section):
    """How to search. `metric` may list several objectives (a Pareto search); the first
    one drives the scheduler and picks the model to register."""

    metric: str | list[str] | None = Field(None, description="default: the task's own")
    mode: Mode | list[Mode] | None = Field(None, description="default: each metric's direction")
    trials: int = Field(8, ge=1)
    concurrency: int = Field(2, ge=1)
    sampler: Literal["tpe", "random", "gp", "cmaes", "nsga2", "qmc"] = Field(
        "tpe", description="Optuna's sampler, seeded by `seed`: tpe, random, gp (Gaussian "
        "process), cmaes, nsga2, qmc (quasi-Monte Carlo); several objectives take all but cmaes")
    try_spec_first: bool = Field(
        True, description="the first trial trains the knobs as the spec writes them"
    )
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    fail_fast: int = Field(
        3, ge=0, description="stop the sweep when its first N trials all fail with the same "
        "code error (0: never)",
    )
    space: dict[str, ParamSpace] = Field(default_factory=dict)
    constraints: dict[str, Bound] = Field(
        default_factory=dict, description="bounds on reported metrics, e.g. {params: {max: "
        "50000}}: a trial outside is infeasible, never registered")
    warm_start: list[str] = Field(
        default_factory=list, description="earlier sweeps (ids or names) whose finished trials "
        "inform the sampler; their best are evaluated first")
    stop: StopConfig | None = Field(
        None, description="end the search early: a target reached, patience_trials without "
        "improvement, or a time budget spent")
    confirm: ConfirmConfig | None = Field(
        None, description="retrain the top configurations over new seeds; the champion is "
        "chosen by their mean, reported with a 95% interval")

    @model_validator(mode="after")
    def _sampler_fits_the_objectives(self) -> SearchConfig:
        if self.multi_objective and self.sampler in SINGLE_OBJECTIVE_SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r} optimizes one objective; with several "
                             f"metrics choose one of {', '.join(MULTI_OBJECTIVE_SAMPLERS)}")
        if self.multi_objective and "type" not in self.scheduler.model_fields_set:
            # Stopping by the first metric alone would stop the cheap end of the front.
            self.scheduler.type = "pareto"
        if self.scheduler.type == "pareto" and not self.multi_objective:
            raise ValueError("scheduler.type 'pareto' ranks trials on several metrics; with one, "
                             "use asha (or list several metrics in search.metric)")
        if self.scheduler.evolves:
            self._check_population()
        return self

    def _check_population(self) -> None:
        kind = self.scheduler.type
        for name, wrong, fix in (
            # tpe is the default (a spec written back keeps it): the others say a choice.
            ("search.sampler", self.sampler != "tpe",
             f"{kind} draws its first population at random and evolves it: drop search.sampler"),
            ("search.metric", self.multi_objective,
             f"{kind} ranks trials on one metric: give search.metric one"),
            ("search.space", any(param.when for param in self.space.values()),
             f"{kind} mutates knobs as it goes: drop the space's `when` conditions"),
            ("search.confirm", self.confirm is not None,
             f"confirm retrains fixed configurations; a {kind} trial's knobs change as it "
             "trains: drop search.confirm"),
            ("search.constraints", bool(self.constraints),
             f"{kind} exploits by score alone: drop search.constraints"),
            ("search.warm_start", bool(self.warm_start),
             f"warm start informs a sampler, which {kind} does not use: drop search.warm_start"),
        ):
            if wrong:
                raise ValueError(f"scheduler {kind!r} and {name}: {fix}")

    @field_validator("metric")
    @classmethod
    def _distinct_metrics(cls, metric: str | list[str] | None) -> str | list[str] | None:
        if isinstance(metric, list):
            if not metric or len(set(metric)) != len(metric):
                raise ValueError("list each objective once, e.g. [val_accuracy, params]")
            if len(metric) == 1:
                return metric[0]
        return metric

    def resolve(self, task: Task | None) -> None:
        """Fill in the default metric and modes of `task` (None: known after loading data),
        and check each metric fits it."""
        if self.metric is None:
            # A table's task is known once its target column is read; both tasks have val_loss.
            self.metric = DEFAULT_METRIC[task] if task else "val_loss"
        known = {**task_metrics("classification"), **task_metrics("regression")}
        directions = []
        for metric in self.objectives:
            if task is not None:
                directions.append(check_metric(task, metric))
            elif metric in known:
                directions.append(known[metric])
            else:
                raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(known)}")
        if self.mode is None:
            self.mode = directions[0] if len(directions) == 1 else directions
        modes = self.mode if isinstance(self.mode, list) else [self.mode]
        if len(modes) != len(directions):
            raise ValueError(
                f"search.mode: give one mode per metric ({len(directions)}), or leave it out"
            )
        for metric in self.constraints:
            if task is not None:
                check_metric(task, metric)
            elif metric not in known:
                raise ValueError(f"search.constraints: unknown metric {metric!r}; "
                                 f"allowed: {', '.join(known)}")

    def mutations(self) -> dict[str, ParamSpace]:
        """pbt/pb2: the searched knobs a trial may change as it trains (`MUTABLE_KNOBS`;
        pb2 models numbers on a continuous scale: float ranges only)."""
        mutable = {path: param for path, param in self.space.items() if path in MUTABLE_KNOBS}
        if self.scheduler.type == "pb2":
            return {path: param for path, param in mutable.items()
                    if isinstance(param, (Uniform, LogUniform))}
        return mutable

    @property
    def objectives(self) -> list[str]:
        """Every metric the search optimizes, the scheduler's first."""
        metric = self.metric or "val_loss"
        return metric if isinstance(metric, list) else [metric]

    @property
    def directions(self) -> list[Mode]:
        if self.mode is None:
            return ["min"] * len(self.objectives)
        return list(self.mode) if isinstance(self.mode, list) else [self.mode]

    @property
    def objective(self) -> str:
        """The metric that drives the scheduler, ranks trials and picks the model to register."""
        return self.objectives[0]

    @property
    def direction(self) -> Mode:
        return self.directions[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class RegisterConfig(Section):
    enabled: bool = True
    name: str | None = Field(None, description="registered model name; default: the spec name")
    alias: str = "champion"

    @field_validator("alias")
    @classmethod
    def _valid_alias(cls, alias: str) -> str:
        if not _ALIAS.match(alias) or alias == "latest" or re.fullmatch(r"v\d+", alias):
            raise ValueError(
                f"alias {alias!r} is not allowed: use letters, digits, '_' or '-', "
                "not 'latest' nor 'v<number>' (e.g. champion, challenger)"
            )
        return alias
