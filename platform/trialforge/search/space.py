"""A spec's search space as Optuna distributions (what `OptunaSearch` samples from)."""

from __future__ import annotations

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from trialforge.spec import Choice, IntRange, LogUniform, ParamSpace, Uniform


def to_optuna(space: dict[str, ParamSpace]) -> dict[str, BaseDistribution]:
    """Map each parameter (dotted knob path) to its Optuna distribution."""
    return {name: to_distribution(param) for name, param in space.items()}


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
