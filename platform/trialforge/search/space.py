"""A spec's search space as Optuna distributions (what `OptunaSearch` samples from)."""

from __future__ import annotations

from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from trialforge.spec import (
    Choice,
    IntRange,
    LogUniform,
    ParamSpace,
    SweepSpec,
    Uniform,
    candidate_values,
)


def to_optuna(space: dict[str, ParamSpace]) -> dict[str, BaseDistribution]:
    """Map each parameter (dotted knob path) to its Optuna distribution."""
    return {name: to_distribution(param) for name, param in space.items()}


def spec_point(spec: SweepSpec) -> dict[str, Any] | None:
    """The spec's own value of every searched knob, if each lies inside its space.

    A sweep starts from the configuration the user wrote (usually a sane one) before the
    sampler explores; None when some written value is outside its range or choices.
    """
    point = {}
    for name, param in spec.search.space.items():
        section, _, knob = name.partition(".")
        value = getattr(getattr(spec, section), knob, None)
        if not _within(param, value):
            return None
        point[name] = value
    return point


def _within(param: ParamSpace, value: Any) -> bool:
    if isinstance(param, Choice):
        return any(type(choice) is type(value) and choice == value for choice in param.choice)
    low, high = candidate_values(param)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and low <= value <= high


def to_distribution(param: ParamSpace) -> BaseDistribution:
    if isinstance(param, LogUniform):
        return FloatDistribution(*param.loguniform, log=True)
    if isinstance(param, Uniform):
        return FloatDistribution(*param.uniform)
    if isinstance(param, IntRange):
        return IntDistribution(*param.int_)
    if isinstance(param, Choice):
        return CategoricalDistribution(param.choice)
    raise TypeError(f"not a search-space parameter: {param!r}")
