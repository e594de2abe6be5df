"""`search.constraints`: bounds on reported metrics. A trial is judged by its best epoch's
metrics (the epoch its checkpoint keeps): outside a bound it is infeasible, never the
champion. The samplers that model constraints (tpe, gp, nsga2) learn each trial's slack
through Optuna's `Trial.set_constraint`; Optuna's best trial and Pareto front leave out the
infeasible ones."""

from __future__ import annotations

import math
from collections.abc import Mapping

from trialforge.spec.sections import Bound


class Constraints:
    """The spec's bounds, applied to a trial's metrics."""

    def __init__(self, bounds: Mapping[str, Bound]) -> None:
        self.bounds = dict(bounds)

    def slacks(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Optuna's constraint values, `metric:max` and `metric:min`: at most 0 inside the
        bound, the distance outside it (a missing or NaN metric: infinitely outside)."""
        slacks: dict[str, float] = {}
        for metric, bound in self.bounds.items():
            value = metrics.get(metric, math.nan)
            if bound.max is not None:
                slacks[f"{metric}:max"] = value - bound.max if math.isfinite(value) else math.inf
            if bound.min is not None:
                slacks[f"{metric}:min"] = bound.min - value if math.isfinite(value) else math.inf
        return slacks

    def broken(self, metrics: Mapping[str, float]) -> str | None:
        """Why a trial with `metrics` is infeasible (None if it is not)."""
        reasons = []
        for key, slack in self.slacks(metrics).items():
            if slack > 0:
                metric, _, side = key.partition(":")
                limit = getattr(self.bounds[metric], side)
                value = metrics.get(metric, math.nan)
                sign = ">" if side == "max" else "<"
                reasons.append(f"{metric} {value:g} {sign} {side} {limit:g}")
        return "; ".join(reasons) or None
