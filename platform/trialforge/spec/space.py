"""Search-space parameters: distributions, conditions, and their bounds."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
)

from trialforge.spec.section import Section


class _Param(Section):
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


DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")


def _distribution_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in value if k in DISTRIBUTIONS]
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
