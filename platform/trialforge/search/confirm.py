"""The confirm stage (`search.confirm`): the search's top configurations, retrained with new
seeds, and a champion chosen by their mean.

A configuration's identity (`config_id`) is its knobs without the seed, so a search trial
and its confirm retrainings share one. A confirmed configuration's mean is given with a 95%
Student-t interval over its new seeds (`mean ± t(0.975, n-1) · s / √n`, s the sample
standard deviation): the search's own trial is left out, since it was selected for being
lucky.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trialforge.search.monitor import TrialLedger
from trialforge.spec import SweepSpec
from trialforge.tracking.tags import TAG_CONFIG
from trialforge.train.contract import TrialState, improves

SEARCH, CONFIRM = "search", "confirm"  # the stages a trial belongs to


def config_id(config: dict[str, Any]) -> str:
    """A short stable id of a trial's knobs, its seed left out."""
    knobs = {key: value for key, value in config.items() if key != "seed"}
    text = json.dumps(knobs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """The mean of `values` and its 95% Student-t interval (low, high)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass
class Confirmed:
    """One configuration retrained over new seeds: each seed's score and trial."""

    config_id: str
    params: dict[str, Any]
    values: list[float] = field(default_factory=list)
    trial_ids: list[str] = field(default_factory=list)

    @property
    def interval(self) -> tuple[float, float, float]:
        return t_interval(self.values)

    def summary(self) -> dict[str, float]:
        """Its figures as the sweep's parent run records them."""
        mean, low, high = self.interval
        return {"confirmed_mean": mean, "confirmed_low": low, "confirmed_high": high,
                "confirmed_seeds": float(len(self.values))}

    def tags(self) -> dict[str, str]:
        """Its figures as the registered version's tags."""
        mean, low, high = self.interval
        return {TAG_CONFIG: self.config_id, "trialforge.confirmed_mean": f"{mean:.6g}",
                "trialforge.confirmed_interval": f"[{low:.6g}, {high:.6g}]",
                "trialforge.confirmed_seeds": str(len(self.values))}

    def to_dict(self) -> dict[str, Any]:
        mean, low, high = self.interval
        return {"config_id": self.config_id, "params": self.params, "values": self.values,
                "trial_ids": self.trial_ids, "mean": mean, "low": low, "high": high,
                "seeds": len(self.values)}


def top_configs(trials: Iterable[TrialLedger], k: int, mode: str) -> list[dict[str, Any]]:
    """The knobs of the `k` best-scored configurations of the search's completed, feasible
    trials (each configuration once)."""
    scored = [(t.best.value, t) for t in trials if t.best.value is not None
              and math.isfinite(t.best.value) and t.state == TrialState.COMPLETED.value
              and t.infeasible is None]
    ranked = sorted(scored, key=lambda pair: pair[0] if mode == "min" else -pair[0])
    chosen: dict[str, dict[str, Any]] = {}
    for _, trial in ranked:
        chosen.setdefault(config_id(trial.config), trial.config)
        if len(chosen) == k:
            break
    return list(chosen.values())


def confirm_points(configs: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Each configuration with each new seed (`seed + 1`, ...): the confirm stage's trials."""
    assert spec.search.confirm is not None
    return [{**config, "seed": spec.seed + offset}
            for config in configs for offset in range(1, spec.search.confirm.seeds + 1)]


def confirmed(trials: Iterable[TrialLedger], mode: str) -> list[Confirmed]:
    """The confirm stage's configurations, best mean first; seeds without a score (failed,
    diverged) or outside `search.constraints` are left out of the mean (and never
    registered)."""
    found: dict[str, Confirmed] = {}
    for trial in trials:
        knobs = {key: value for key, value in trial.config.items() if key != "seed"}
        entry = found.setdefault(config_id(trial.config), Confirmed(config_id(trial.config),
                                                                      knobs))
        if (trial.best.value is not None and math.isfinite(trial.best.value)
                and trial.infeasible is None):
            entry.values.append(trial.best.value)
            entry.trial_ids.append(trial.trial_id)
    ranked = [entry for entry in found.values() if entry.values]
    best_first = sorted(ranked, key=lambda entry: entry.interval[0], reverse=mode == "max")
    return best_first


def best_seed(entry: Confirmed, mode: str) -> str:
    """The trial of `entry`'s best seed: the weights the registry gets."""
    best = 0
    for index, value in enumerate(entry.values):
        if improves(value, entry.values[best], mode):
            best = index
    return entry.trial_ids[best]
