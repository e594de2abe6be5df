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

from trialforge.errors import SpecError
from trialforge.models import BUILTIN_FAMILIES, check_builder

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]
WeightInit = Literal["default", "xavier", "he"]
Mode = Literal["min", "max"]

#: Metrics every classification trial reports, with the direction that is better.
METRICS: dict[str, Mode] = {
    "val_accuracy": "max",
    "val_loss": "min",
    "train_loss": "min",
}


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


_FAMILY_CONFIGS: dict[str, type[BaseModel]] = {"mlp": MLPConfig, "cnn": CNNConfig}
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
    dataset: Literal["digits"] = "digits"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)


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


# --- search space ------------------------------------------------------------------------


class _Range(_Section):
    @field_validator("*", mode="before")
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


class Choice(_Section):
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
    metric: str = "val_accuracy"
    mode: Mode | None = Field(None, description="default: the metric's own direction")
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
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
        return metric

    @model_validator(mode="after")
    def _default_mode(self) -> SearchConfig:
        if self.mode is None:
            self.mode = METRICS[self.metric]
        return self

    @property
    def direction(self) -> Mode:
        return self.mode or METRICS[self.metric]


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
    def _resolve_space(self) -> SweepSpec:
        resolved: dict[str, ParamSpace] = {}
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
            resolved[path] = space
        self.search.space = resolved
        return self

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

    def trial_params(self) -> dict[str, Any]:
        """The knobs one trial trains with, flattened to dotted paths (logged to MLflow)."""
        flat: dict[str, Any] = {"seed": self.seed}
        for section in _SEARCHABLE_SECTIONS:
            for name, value in getattr(self, section).model_dump(mode="json").items():
                flat[f"{section}.{name}"] = value
        return flat


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
