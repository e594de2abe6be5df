"""A spec's search space as Optuna distributions (what `OptunaSearch` samples from).

A space without conditions is a fixed dict of distributions. A conditional one is a
define-by-run function: Optuna is asked for a parameter only when its condition holds, so a
parameter that is off is never sampled, never seen by TPE and never logged.
"""

from __future__ import annotations

from typing import Any

import optuna
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


def searcher_space(
    space: dict[str, ParamSpace],
) -> dict[str, BaseDistribution] | ConditionalSpace:
    """What `OptunaSearch` takes: distributions, or a define-by-run space when some
    parameter is conditional."""
    if any(param.when for param in space.values()):
        return ConditionalSpace(space)
    return to_optuna(space)


class ConditionalSpace:
    """A define-by-run space: each parameter is asked for only when its condition holds.

    A class, not a closure: Tune pickles its searcher (with this) into the experiment state.
    """

    def __init__(self, space: dict[str, ParamSpace]) -> None:
        self.space = space

    def __call__(self, trial: optuna.Trial) -> None:
        point: dict[str, Any] = {}
        for name, param in self.space.items():
            if param.active(point):
                point[name] = suggest(trial, name, param)


def suggest(trial: optuna.Trial, name: str, param: ParamSpace) -> Any:
    """Ask `trial` for one parameter through Optuna's public `suggest_*` calls (Ray
    captures their values to build the trial's config)."""
    if isinstance(param, LogUniform):
        return trial.suggest_float(name, *param.loguniform, log=True)
    if isinstance(param, Uniform):
        return trial.suggest_float(name, *param.uniform)
    if isinstance(param, IntRange):
        return trial.suggest_int(name, *param.int_)
    return trial.suggest_categorical(name, param.choice)


def spec_point(spec: SweepSpec) -> dict[str, Any] | None:
    """The spec's own value of every searched knob, if each lies inside its space.

    A sweep starts from the configuration the user wrote (usually a sane one) before the
    sampler explores; None when some written value is outside its range or choices.
    """
    point: dict[str, Any] = {}
    for name, param in spec.search.space.items():
        if not param.active(point):
            continue
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
