"""`search.constraints` (pure logic): the slacks Optuna is told, why a trial is infeasible,
and that the confirm stage leaves infeasible trials out."""

from __future__ import annotations

import math

from trialforge.search.confirm import best_seed, confirmed, top_configs
from trialforge.search.constraints import Constraints
from trialforge.search.monitor import TrialLedger
from trialforge.spec.sections import Bound
from trialforge.train.contract import BestEpoch


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


def _ledger(trial_id: str, config: dict[str, object], value: float,
            infeasible: str | None = None) -> TrialLedger:
    best = BestEpoch("val_accuracy", "max")
    best.offer({"val_accuracy": value, "epoch": 1})
    return TrialLedger(trial_id, trial_id, config, best, state="completed",
                       infeasible=infeasible)


def test_an_infeasible_trial_is_never_confirmed_nor_the_champion() -> None:
    trials = [_ledger("big", {"model.width": 256}, 0.99, "params 19210 > max 5000"),
              _ledger("small", {"model.width": 8}, 0.90)]
    assert top_configs(trials, 2, "max") == [{"model.width": 8}]
    seeds = [_ledger("a", {"model.width": 8, "seed": 1}, 0.9),
             _ledger("b", {"model.width": 8, "seed": 2}, 0.95, "latency_us 50 > max 40")]
    (entry,) = confirmed(seeds, "max")
    assert entry.values == [0.9] and best_seed(entry, "max") == "a"
