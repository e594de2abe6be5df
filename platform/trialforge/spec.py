"""A sweep spec: pydantic models of every knob, YAML loading and `key=value` overrides.

The spec is the only input of a sweep. Every field has a default, so a spec can be a few
lines; anything unknown or out of range is a `SpecError` naming the field and the fix.
Search-space keys may be bare knob names (`lr`, `dropout`) or dotted paths (`train.lr`);
they are stored as dotted paths, the one name a knob has in Optuna, Tune and MLflow.
"""

from __future__ import annotations

import difflib
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from trialforge.data import DATASET_LAYOUTS, DATASET_TASKS, FILE_DATASETS
from trialforge.errors import SpecError
from trialforge.models import BUILTIN_FAMILIES, INPUT_LAYOUT, check_builder
from trialforge.tasks import DEFAULT_METRIC, Mode, Task, check_metric, task_metrics

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]
WeightInit = Literal["default", "xavier", "he"]


class _Section(BaseModel):
    """A spec section: unknown keys are an error that lists the allowed ones."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            allowed = sorted(field.alias or name for name, field in cls.model_fields.items())
            for key in data:
                if key not in allowed:
                    hint = difflib.get_close_matches(str(key), allowed, n=1)
                    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
                    raise ValueError(
                        f"unknown field {key!r}{maybe}; allowed: {', '.join(allowed)}"
                    )
        return data


# --- model -------------------------------------------------------------------------------


class _NetKnobs(_Section):
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm: bool = False
    init: WeightInit = "default"


class MLPConfig(_NetKnobs):
    """Multi-layer perceptron: `depth` hidden layers of `width` units."""

    family: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1, le=16)
    width: int = Field(128, ge=1, le=8192)


class CNNConfig(_NetKnobs):
    """Conv blocks (conv, batchnorm, activation, pooling), channels doubling per block."""

    family: Literal["cnn"] = "cnn"
    conv_blocks: int = Field(2, ge=1, le=6)
    channels: int = Field(32, ge=1, le=1024)
    kernel_size: int = Field(3, ge=1, le=11)
    pool: Literal["max", "avg"] = "max"
    fc_width: int = Field(64, ge=1, le=8192)


class RNNConfig(_Section):
    """Recurrent network over sequences: a vanilla tanh RNN, an LSTM or a GRU."""

    family: Literal["rnn"] = "rnn"
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    layers: int = Field(1, ge=1, le=8)
    hidden_size: int = Field(64, ge=1, le=4096)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between stacked layers")
    embedding_dim: int = Field(32, ge=1, le=4096, description="token inputs (text) only")


class GANConfig(_Section):
    """DCGAN-style generator and discriminator; `g_`/`d_` knobs set each network."""

    family: Literal["gan"] = "gan"
    latent_dim: int = Field(32, ge=1, le=1024)
    channels: int = Field(32, ge=1, le=1024, description="feature maps of both networks")
    g_lr: float = Field(2e-4, gt=0.0)
    d_lr: float = Field(2e-4, gt=0.0)
    g_beta1: float = Field(0.5, ge=0.0, lt=1.0)
    d_beta1: float = Field(0.5, ge=0.0, lt=1.0)
    g_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    d_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    g_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    d_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    g_batchnorm: bool = True
    d_batchnorm: bool = False
    g_activation: Activation = "relu"
    d_activation: Activation = "leaky_relu"


class TransferConfig(CNNConfig):
    """A backbone with a new head. `backbone`: `scratch` (this config's CNN, untrained),
    `models:/NAME@ALIAS` or `models:/NAME/VERSION` (MLflow registry), a checkpoint file of
    this CNN's weights, or `torchvision:ARCH` (weights from the local torch hub cache)."""

    family: Literal["transfer"] = "transfer"  # type: ignore[assignment]
    backbone: str = "scratch"
    freeze: Literal["none", "all", "all_but_last"] = "none"
    trainable_layers: int = Field(1, ge=1, description="with freeze=all_but_last: the last k")
    backbone_lr: float | None = Field(None, gt=0.0, description="default: train.lr")

    @field_validator("backbone")
    @classmethod
    def _known_source(cls, backbone: str) -> str:
        if backbone.startswith("models:/") and not re.fullmatch(r"models:/[^/@]+(@[^/@]+|/\d+)",
                                                                 backbone):
            raise ValueError(
                f"backbone {backbone!r}: write models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        if backbone.startswith("torchvision:") and not backbone.removeprefix("torchvision:"):
            raise ValueError("backbone: name a torchvision architecture, e.g. torchvision:resnet18")
        return backbone


class CustomModelConfig(BaseModel):
    """A user's builder, `family: package.module:function`; other keys are its arguments."""

    model_config = ConfigDict(extra="allow")

    family: str

    @field_validator("family")
    @classmethod
    def _importable(cls, family: str) -> str:
        check_builder(family)
        return family

    @model_validator(mode="after")
    def _accepts_options(self) -> CustomModelConfig:
        check_builder(self.family, options=self.options)
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


_FAMILY_CONFIGS: dict[str, type[BaseModel]] = {
    "mlp": MLPConfig, "cnn": CNNConfig, "rnn": RNNConfig, "gan": GANConfig,
    "transfer": TransferConfig,
}
assert set(_FAMILY_CONFIGS) == set(BUILTIN_FAMILIES), "spec and models disagree on families"


def _family_tag(value: Any) -> str | None:
    family = value.get("family", "cnn") if isinstance(value, dict) else value.family
    if family in _FAMILY_CONFIGS:
        return str(family)
    if isinstance(family, str) and ":" in family:
        return "custom"
    return None


ModelConfig = Annotated[
    Union[
        Annotated[MLPConfig, Tag("mlp")],
        Annotated[CNNConfig, Tag("cnn")],
        Annotated[RNNConfig, Tag("rnn")],
        Annotated[GANConfig, Tag("gan")],
        Annotated[TransferConfig, Tag("transfer")],
        Annotated[CustomModelConfig, Tag("custom")],
    ],
    Discriminator(
        _family_tag,
        custom_error_type="unknown_family",
        custom_error_message=(
            f"unknown family; allowed: {', '.join(_FAMILY_CONFIGS)}, "
            "or your own builder as 'package.module:function'"
        ),
    ),
]


# --- data and training -------------------------------------------------------------------


class DataConfig(_Section):
    """Which data, and how it is split. File datasets read `path`; the others are built in."""

    dataset: Literal["digits", "series", "text", "table", "npz", "images"] = "digits"
    path: str | None = Field(None, description="table/npz/images/text: the file or folder")
    target: str | None = Field(None, description="table: the target column")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="table/npz: auto = classification for integer or text targets"
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    window: int = Field(32, ge=2, le=100_000, description="series/text: steps per example")
    image_size: int = Field(32, ge=4, le=1024, description="images: resized to this square")
    classes: list[int] | None = Field(None, description="digits: keep only these labels")
    train_per_class: int | None = Field(None, ge=1, description="keep few labels per class")

    @model_validator(mode="after")
    def _path_given(self) -> DataConfig:
        if self.dataset in FILE_DATASETS and not self.path:
            raise ValueError(f"dataset {self.dataset!r} reads files: set data.path")
        if self.dataset == "table" and not self.target:
            raise ValueError("dataset 'table' needs data.target, the name of the target column")
        if self.path:
            # Relative to where the sweep is started; absolute from then on, so trials
            # running in other folders (Ray workers) read the same files.
            self.path = str(Path(self.path).expanduser().resolve())
        return self


class TrainConfig(_Section):
    epochs: int = Field(12, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    workers: int = Field(1, ge=1, description="> 1: data-parallel (DDP) with a TorchTrainer")
    use_gpu: bool = False
    max_failures: int = Field(1, ge=0, description="restarts of a trial whose worker died")
    l1: float = Field(0.0, ge=0.0, description="L1 penalty on the weights, added to the loss")
    grad_clip: float = Field(0.0, ge=0.0, description="max gradient norm; 0 = no clipping")
    lr_schedule: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(5, ge=1, description="lr_schedule=step: epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="lr_schedule=step: decay factor")
    patience: int | None = Field(
        None, ge=1, description="stop when the metric has not improved for this many epochs"
    )


# --- search space ------------------------------------------------------------------------


class _Param(_Section):
    """A searched knob. `when` makes it conditional: sampled (and logged) only when other,
    earlier `choice` parameters take some values: `{cell: [lstm, gru]}`, or
    `{backbone: {not: scratch}}`. Otherwise the trial keeps the spec's value."""

    when: dict[str, Any] | None = None

    def active(self, point: dict[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values sampled before it."""
        for path, condition in (self.when or {}).items():
            if path not in point:
                return False  # what it depends on is itself off
            negate = isinstance(condition, dict)
            values = condition["not"] if negate else condition
            if (point[path] in values) == negate:
                return False
        return True


class _Range(_Param):
    @field_validator("loguniform", "uniform", "int_", mode="before", check_fields=False)
    @classmethod
    def _pair(cls, bounds: Any) -> Any:
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise ValueError(f"write the range as [low, high], e.g. [1.0e-4, 0.1] (got {bounds!r})")
        return bounds

    @staticmethod
    def _ordered(bounds: tuple[float, float]) -> tuple[float, float]:
        low, high = bounds
        if low >= high:
            raise ValueError(f"low ({low}) must be below high ({high}); write [low, high]")
        return bounds


class LogUniform(_Range):
    loguniform: tuple[float, float]

    @field_validator("loguniform")
    @classmethod
    def _positive(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if bounds[0] <= 0:
            raise ValueError(f"low ({bounds[0]}) must be > 0 on a log scale; use uniform")
        return cls._ordered(bounds)


class Uniform(_Range):
    uniform: tuple[float, float]

    @field_validator("uniform")
    @classmethod
    def _valid(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        return cls._ordered(bounds)


class IntRange(_Range):
    int_: tuple[int, int] = Field(alias="int")

    @field_validator("int_")
    @classmethod
    def _valid(cls, bounds: tuple[int, int]) -> tuple[int, int]:
        low, high = cls._ordered(bounds)
        return int(low), int(high)


Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr]


class Choice(_Param):
    choice: list[Scalar] = Field(min_length=1)

    @field_validator("choice")
    @classmethod
    def _distinct(cls, values: list[Scalar]) -> list[Scalar]:
        if len({(type(v), v) for v in values}) != len(values):
            raise ValueError("choices must be distinct")
        return values

    @property
    def values(self) -> list[Scalar]:
        return self.choice


_DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")


def _distribution_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in value if k in _DISTRIBUTIONS]
        return keys[0] if len(keys) == 1 else None
    tags: dict[type, str] = {
        LogUniform: "loguniform", Uniform: "uniform", IntRange: "int", Choice: "choice"
    }
    return tags.get(type(value))


ParamSpace = Annotated[
    Union[
        Annotated[LogUniform, Tag("loguniform")],
        Annotated[Uniform, Tag("uniform")],
        Annotated[IntRange, Tag("int")],
        Annotated[Choice, Tag("choice")],
    ],
    Discriminator(
        _distribution_tag,
        custom_error_type="unknown_distribution",
        custom_error_message=(
            "give exactly one of loguniform, uniform, int, choice, "
            "e.g. {loguniform: [1.0e-4, 0.1]} or {choice: [relu, tanh]}"
        ),
    ),
]


def candidate_values(space: ParamSpace) -> list[Any]:
    """The values that bound a parameter: its choices, or its low and high."""
    if isinstance(space, Choice):
        return list(space.choice)
    if isinstance(space, LogUniform):
        return list(space.loguniform)
    if isinstance(space, Uniform):
        return list(space.uniform)
    return list(space.int_)


class SchedulerConfig(_Section):
    type: Literal["asha", "fifo", "hyperband", "median"] = "asha"
    grace_period: int = Field(1, ge=1, description="epochs before a trial may be stopped")
    reduction_factor: float = Field(3.0, gt=1.0)


class SearchConfig(_Section):
    """How to search. `metric` may list several objectives (a Pareto search); the first
    one drives the scheduler and picks the model to register."""

    metric: str | list[str] | None = Field(None, description="default: the task's own")
    mode: Mode | list[Mode] | None = Field(None, description="default: each metric's direction")
    trials: int = Field(8, ge=1)
    concurrency: int = Field(2, ge=1)
    sampler: Literal["tpe", "random"] = "tpe"
    try_spec_first: bool = Field(
        True, description="the first trial trains the knobs as the spec writes them"
    )
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    space: dict[str, ParamSpace] = Field(default_factory=dict)

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


class RegisterConfig(_Section):
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


# --- the sweep ---------------------------------------------------------------------------

_SEARCHABLE_SECTIONS = ("model", "train", "data")


# `register` is also ABCMeta.register, a method of the metaclass: pydantic warns that the field
# shadows it, but instances (all a spec is used as) see only the field.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class SweepSpec(_Section):
    """Everything a sweep needs: what to train, on what, and how to search."""

    name: str = Field("sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    seed: int = 0
    model: ModelConfig = Field(default_factory=CNNConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    register: RegisterConfig = Field(default_factory=RegisterConfig)

    @model_validator(mode="after")
    def _resolve(self) -> SweepSpec:
        layouts = DATASET_LAYOUTS[self.data.dataset]
        wanted = INPUT_LAYOUT.get(self.model.family)
        if wanted is not None and wanted not in layouts and "tokens" not in layouts:
            raise ValueError(
                f"model.family {self.model.family!r} cannot train on dataset "
                f"{self.data.dataset!r} (it gives {', '.join(layouts)} inputs)"
            )
        if "tokens" in layouts and self.model.family not in ("rnn",) and ":" not in str(
            self.model.family
        ):
            raise ValueError(f"dataset {self.data.dataset!r} is token sequences: use "
                             "model.family rnn (or your own builder)")
        try:
            self.search.resolve(self.task)
        except ValueError as exc:
            raise ValueError(f"search.metric: {exc}") from None
        self._resolve_space()
        return self

    @property
    def task(self) -> Task | None:
        """What the trials learn; None while it depends on the data (a table's target)."""
        if self.model.family == "gan":
            return "generation"
        task = DATASET_TASKS[self.data.dataset]
        if task is None and self.data.task != "auto":
            task = self.data.task
        return task

    def _resolve_space(self) -> None:
        resolved: dict[str, ParamSpace] = {}
        keys: dict[str, str] = {}
        for key, space in self.search.space.items():
            path = self._param_path(key)
            if path in resolved:
                raise ValueError(f"search.space: {key!r} names {path} twice")
            for value in candidate_values(space):
                try:
                    self.with_params({path: value})
                except ValidationError as exc:
                    reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(
                        f"search.space.{key}: {value!r} is not a valid {path}: {reason}"
                    ) from None
            resolved[path], keys[path] = space, key
        for path, space in resolved.items():
            if space.when:
                space.when = self._resolve_condition(keys[path], space.when, resolved)
        self.search.space = _parents_first(resolved, keys)

    def _resolve_condition(
        self, key: str, when: dict[str, Any], space: dict[str, ParamSpace]
    ) -> dict[str, Any]:
        """Conditions keyed by dotted paths, on `choice` parameters and their values."""
        resolved: dict[str, Any] = {}
        for name, condition in when.items():
            path = self._param_path(name)
            parent = space.get(path)
            if not isinstance(parent, Choice):
                raise ValueError(f"search.space.{key}.when: {name!r} must be a choice "
                                 "parameter of search.space")
            negate = isinstance(condition, dict)
            if negate and set(condition) != {"not"}:
                raise ValueError(f"search.space.{key}.when.{name}: write a value, a list of "
                                 "values, or {not: value}")
            values = condition["not"] if negate else condition
            values = values if isinstance(values, list) else [values]
            unknown = [value for value in values if value not in parent.choice]
            if unknown:
                raise ValueError(f"search.space.{key}.when.{name}: {unknown} not among its "
                                 f"choices {parent.choice}")
            resolved[path] = {"not": values} if negate else values
        return resolved

    def _param_path(self, key: str) -> str:
        """Map a space key (`lr` or `train.lr`) to the dotted path of the knob it sets."""
        if "." in key:
            section, _, name = key.partition(".")
            if section in _SEARCHABLE_SECTIONS and self._has_field(section, name):
                return key
        else:
            for section in _SEARCHABLE_SECTIONS:
                if key != "family" and key in type(getattr(self, section)).model_fields:
                    return f"{section}.{key}"
            if isinstance(self.model, CustomModelConfig):
                return f"model.{key}"  # a user's builder takes any other knob
        raise ValueError(
            f"search.space: unknown parameter {key!r}; searchable: {', '.join(self.knobs())}"
        )

    def _has_field(self, section: str, name: str) -> bool:
        config = getattr(self, section)
        if name == "family":
            return False
        return name in type(config).model_fields or isinstance(config, CustomModelConfig)

    def knobs(self) -> list[str]:
        """The dotted names of every knob a search space may set."""
        names = []
        for section in _SEARCHABLE_SECTIONS:
            fields = type(getattr(self, section)).model_fields
            names += [f"{section}.{name}" for name in fields if name != "family"]
        return names

    def with_params(self, params: dict[str, Any]) -> SweepSpec:
        """This spec with some knobs set (dotted paths): what one trial trains."""
        updates: dict[str, dict[str, Any]] = {}
        for path, value in params.items():
            section, _, name = path.partition(".")
            updates.setdefault(section, getattr(self, section).model_dump())[name] = value
        sections = {
            section: type(getattr(self, section)).model_validate(values)
            for section, values in updates.items()
        }
        return self.model_copy(update=sections)

    @property
    def model_name(self) -> str:
        """The registered model name."""
        return self.register.name or self.name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def trial_params(self, sampled: dict[str, Any] | None = None) -> dict[str, Any]:
        """The knobs one trial trains with, flattened to dotted paths (logged to MLflow).

        Given what the searcher `sampled`, the conditional parameters it left off are left
        out: they do not describe this trial.
        """
        flat: dict[str, Any] = {"seed": self.seed}
        for section in _SEARCHABLE_SECTIONS:
            for name, value in getattr(self, section).model_dump(mode="json").items():
                flat[f"{section}.{name}"] = value
        if sampled is not None:
            for path, space in self.search.space.items():
                if space.when and path not in sampled:
                    flat.pop(path, None)
        return flat


def _parents_first(space: dict[str, ParamSpace], keys: dict[str, str]) -> dict[str, ParamSpace]:
    """The space ordered so each parameter comes after those its condition reads (the order
    a define-by-run search asks for them); a cycle of conditions is an error."""
    ordered: dict[str, ParamSpace] = {}
    pending = dict(space)
    while pending:
        ready = [path for path, param in pending.items()
                 if all(parent in ordered for parent in (param.when or {}))]
        if not ready:
            names = ", ".join(keys[path] for path in pending)
            raise ValueError(f"search.space: the conditions of {names} depend on each other "
                             "in a cycle")
        for path in ready:
            ordered[path] = pending.pop(path)
    return ordered


# --- loading -----------------------------------------------------------------------------


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """Load a YAML spec, apply `key=value` overrides, validate. Raises `SpecError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"spec {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"spec {path}: the top level must be a mapping like 'name: my-sweep'")
    return parse_spec(raw, overrides, source=str(path))


def parse_spec(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "spec"
) -> SweepSpec:
    """Validate a spec given as a dict (after `key=value` overrides). Raises `SpecError`."""
    raw = apply_overrides(raw, overrides)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"invalid {source}: {format_errors(exc)}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of `raw` with `a.b.c=value` words applied; values parse as YAML."""
    result = _deep_copy(raw)
    for word in overrides:
        key, sep, text = word.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(f"override {word!r}: write key=value, e.g. train.epochs=3")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            raise SpecError(f"override {word!r}: the value is not valid YAML") from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"override {word!r}: {part} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


def format_errors(exc: ValidationError) -> str:
    """Pydantic's errors as `field.path: message` parts on one line."""
    parts = []
    for error in exc.errors():
        loc = _readable_loc(error["loc"], error["type"])
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "unknown_family":
            msg = f"{error['input'].get('family')!r}: {msg}"
        elif error["type"] not in ("value_error", "missing", "unknown_distribution"):
            msg = f"{msg} (got {error['input']!r})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _readable_loc(loc: tuple[int | str, ...], error_type: str) -> str:
    names = [str(part) for part in loc]
    # Drop the union tags pydantic inserts (`model.cnn.dropout` -> `model.dropout`).
    if len(names) > 1 and names[0] == "model" and names[1] in (*_FAMILY_CONFIGS, "custom"):
        del names[1]
    if len(names) > 3 and names[:2] == ["search", "space"] and names[3] in _DISTRIBUTIONS:
        del names[3]
    if error_type == "unknown_family":
        names.append("family")
    return ".".join(names)
