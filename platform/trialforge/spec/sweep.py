"""A whole sweep spec: its sections, the task they pose, and the search space resolved."""

from __future__ import annotations

import graphlib
import warnings
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from trialforge.data.names import DATASET_LAYOUTS, DATASET_TASKS, FILE_DATASETS
from trialforge.models import INPUT_LAYOUT
from trialforge.spec.families import CNNConfig, CustomModelConfig, ModelConfig, TransferConfig
from trialforge.spec.section import Section
from trialforge.spec.sections import (
    MUTABLE_KNOBS,
    DataConfig,
    RegisterConfig,
    SearchConfig,
    TrainConfig,
)
from trialforge.spec.space import Choice, ParamSpace, candidate_values
from trialforge.tasks import Task

_SEARCHABLE_SECTIONS = ("model", "train", "data")


# `register` is also ABCMeta.register, a method of the metaclass: pydantic warns that the field
# shadows it, but instances (all a spec is used as) see only the field.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class SweepSpec(Section):
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
        if self.data.stream and self.model.family == "gan":
            raise ValueError("data.stream: the GAN loop trains in memory; set data.stream=false")
        if self.data.test_fraction and self.model.family == "gan":
            raise ValueError("data.test_fraction: a GAN is scored by its judge, with no test "
                             "split; set data.test_fraction=0")
        if self.data.stream and any(key.startswith("data.") or key in DataConfig.model_fields
                                    for key in self.search.space):
            raise ValueError("data.stream: the stream is opened once for every trial; search "
                             "no data knob, or set data.stream=false")
        if self.model.family == "gan" and self.train.precision != "fp32":
            raise ValueError(f"train.precision {self.train.precision!r}: the GAN loop trains in "
                             "fp32 only; set train.precision=fp32")
        try:
            self.search.resolve(self.task)
        except ValueError as exc:
            raise ValueError(f"search.metric: {exc}") from None
        self._resolve_space()
        if self.search.scheduler.evolves and not self.search.mutations():
            kind = self.search.scheduler.type
            which = "float ranges (uniform, loguniform) of " if kind == "pb2" else ""
            raise ValueError(
                f"search.space: scheduler {kind!r} mutates {which}"
                f"{', '.join(sorted(MUTABLE_KNOBS))} while trials train; search at least one")
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
        """This spec with some knobs set (dotted paths, or `seed`): what one trial trains."""
        updates: dict[str, dict[str, Any]] = {}
        for path, value in params.items():
            if path == "seed":
                continue
            section, _, name = path.partition(".")
            updates.setdefault(section, getattr(self, section).model_dump())[name] = value
        changed: dict[str, Any] = {
            section: type(getattr(self, section)).model_validate(values)
            for section, values in updates.items()
        }
        if "seed" in params:
            changed["seed"] = int(params["seed"])
        return self.model_copy(update=changed)

    @property
    def split_seed(self) -> int:
        """The seed of the train/validation/test split: `data.split_seed`, else `seed`."""
        return self.data.split_seed if self.data.split_seed is not None else self.seed

    def backbone_sources(self) -> list[str]:
        """Every backbone a transfer sweep may train: the spec's, and its space's choices."""
        if not isinstance(self.model, TransferConfig):
            return []
        sources = [self.model.backbone]
        space = self.search.space.get("model.backbone")
        if isinstance(space, Choice):
            sources += [str(value) for value in space.choice]
        return list(dict.fromkeys(sources))

    def reads_user_inputs(self) -> bool:
        """Whether the sweep reads a user's files or registry models (checked up front)."""
        return self.data.dataset in FILE_DATASETS or bool(self.backbone_sources())

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
    graph = {path: list(param.when or {}) for path, param in space.items()}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        names = ", ".join(keys[path] for path in dict.fromkeys(exc.args[1]))
        raise ValueError(f"search.space: the conditions of {names} depend on each other "
                         "in a cycle") from None
    return {path: space[path] for path in order}
