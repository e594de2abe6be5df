"""`search.constraints` (pure logic): the slacks Optuna is told and why a trial is infeasible."""

from __future__ import annotations

import math

from trialforge.search.constraints import Constraints
from trialforge.spec.sections import Bound


def test_slacks_are_zero_or_less_inside_and_the_distance_outside() -> None:
    rules = Constraints({"params": Bound(max=50_000), "val_accuracy": Bound(min=0.5, max=1.0)})
    inside = {"params": 40_000.0, "val_accuracy": 0.75}
    assert rules.slacks(inside) == {"params:max": -10_000.0, "val_accuracy:max": -0.25,
                                    "val_accuracy:min": -0.25}
    assert rules.broken(inside) is None
    outside = {"params": 60_000.0, "val_accuracy": 0.25}
    assert rules.slacks(outside)["params:max"] == 10_000.0
    assert rules.broken(outside) == "params 60000 > max 50000; val_accuracy 0.25 < min 0.5"
    assert rules.slacks({"params": math.nan})["params:max"] == math.inf
