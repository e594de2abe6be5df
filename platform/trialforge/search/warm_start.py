"""`search.warm_start`: a new sweep's sampler starts from earlier sweeps' finished trials.

Each finished (COMPLETE) trial of the named sweeps' Optuna studies whose knobs fit the new
space is added to the new study with the new space's distributions, so TPE, GP or NSGA-II
model it from the first trial; the best few are evaluated again first, in this sweep (the
data or epochs may differ). A trial that does not fit is counted and skipped, with the
reason. Added trials stay the earlier sweeps': this sweep registers only its own.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from trialforge.catalog import Catalog, SweepRecord, catalog_exists
from trialforge.errors import NotFoundError, SpecError
from trialforge.home import Home
from trialforge.search.confirm import config_id
from trialforge.search.space import to_distribution
from trialforge.spec import ParamSpace, SweepSpec
from trialforge.tracking.tags import TAG_ORIGIN, TAG_TRIAL

#: How many of the earlier trials are evaluated first, at most.
MAX_FIRST = 3


@dataclass
class WarmStart:
    """What a sweep starts from: the earlier trials that fit, the points to evaluate first
    (with the sweep/trial each came from) and what was skipped, by reason."""

    sources: dict[str, str] = field(default_factory=dict)  # sweep id -> its name
    trials: list[FrozenTrial] = field(default_factory=list)
    first: list[dict[str, Any]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # config id -> "sweep/trial"
    skipped: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> str:
        """The catalog's record of it (`SweepRecord.warm_start`)."""
        return json.dumps({"sources": self.sources, "added": len(self.trials),
                           "first": len(self.first), "skipped": dict(self.skipped)})

    def origin(self, config: dict[str, Any]) -> str | None:
        """The earlier sweep and trial a trial's knobs were taken from, if they were."""
        return self.origins.get(config_id(config))


def gather(spec: SweepSpec, home: Home) -> WarmStart:
    """The earlier trials `spec.search.warm_start` names, checked against the new search.
    Raises `SpecError` for an unknown sweep, or one that optimized another metric or
    direction (or kept no study)."""
    warm = WarmStart()
    if not catalog_exists(home.db_url):
        raise SpecError(f"search.warm_start: no sweep {spec.search.warm_start[0]!r}: this home "
                        "has no sweeps yet (`trialforge sweep list` shows them)")
    catalog = Catalog(home.db_url)
    try:
        records = [_find(catalog, ref) for ref in spec.search.warm_start]
    finally:
        catalog.close()
    storage = optuna.storages.RDBStorage(home.db_url)
    ranked: list[tuple[float, dict[str, Any], str]] = []
    for record in records:
        _check_objectives(record, spec)
        warm.sources[record.id] = record.name
        try:
            study = optuna.load_study(study_name=record.study_name, storage=storage)
        except KeyError:
            raise SpecError(f"search.warm_start: sweep {record.id} ({record.name}) kept no "
                            "Optuna study (it searched no space, or evolved with pbt/pb2): "
                            "nothing to start from; drop it") from None
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            point, reason = fit(trial.params, spec.search.space)
            if reason is not None:
                warm.skipped[reason] += 1
                continue
            # A trial that sweep was itself warm-started with keeps where it came from.
            origin = (trial.user_attrs.get(TAG_ORIGIN)
                      or f"{record.id}/{trial.user_attrs.get(TAG_TRIAL, trial.number)}")
            warm.trials.append(optuna.trial.create_trial(
                params=point, distributions=_distributions(point, spec.search.space),
                values=trial.values, user_attrs={TAG_ORIGIN: origin}))
            sign = -1.0 if spec.search.direction == "max" else 1.0
            ranked.append((sign * trial.values[0], point, origin))
    for _, point, origin in sorted(ranked, key=lambda entry: entry[0]):
        if len(warm.first) == min(MAX_FIRST, max(1, spec.search.trials // 4)):
            break
        if config_id(point) not in warm.origins:
            warm.first.append(point)
            warm.origins[config_id(point)] = origin
    return warm


def fit(params: dict[str, Any], space: dict[str, ParamSpace]) -> tuple[dict[str, Any], str | None]:
    """The knobs of an earlier trial as a point of `space`, or why they do not fit it."""
    point: dict[str, Any] = {}
    for name, param in space.items():
        if not param.active(point):
            continue
        if name not in params:
            return point, f"does not set {name}"
        if not _contains(to_distribution(param), params[name]):
            return point, f"{name} outside the new space"
        point[name] = params[name]
    extra = sorted(set(params) - set(point))
    if extra:
        return point, f"sets {extra[0]}, which the new space does not search"
    return point, None


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):  # not among the choices, or not a number
        return False


def _distributions(point: dict[str, Any], space: dict[str, ParamSpace],
                   ) -> dict[str, BaseDistribution]:
    return {name: to_distribution(space[name]) for name in point}


def _find(catalog: Catalog, ref: str) -> SweepRecord:
    """A sweep by id (or unique prefix), else the latest finished one of that name."""
    try:
        return catalog.get_sweep(ref)
    except NotFoundError:
        pass
    named = [record for record in catalog.list_sweeps()
             if record.name == ref and record.state == "finished"]
    if not named:
        raise SpecError(f"search.warm_start: no finished sweep with id or name {ref!r}; "
                        "`trialforge sweep list` shows them")
    return named[0]  # the newest first


def _check_objectives(record: SweepRecord, spec: SweepSpec) -> None:
    """The earlier sweep optimized the same metrics in the same directions (its spec, as
    the catalog keeps it, names them all; the record, the first)."""
    search = (yaml.safe_load(record.spec_yaml) or {}).get("search") or {}
    metric, mode = search.get("metric"), search.get("mode")
    metrics = metric if isinstance(metric, list) else [record.metric]
    modes = list(mode) if isinstance(mode, list) else [record.mode]
    wanted: tuple[list[str], list[str]] = (spec.search.objectives, list(spec.search.directions))
    if (metrics, modes) != wanted:
        raise SpecError(
            f"search.warm_start: sweep {record.id} ({record.name}) optimized "
            f"{_describe(metrics, modes)}, this one {_describe(*wanted)}: its trials' scores "
            "do not compare; warm-start from a sweep of the same metric and mode")


def _describe(metrics: list[str], modes: list[str]) -> str:
    return ", ".join(f"{mode} {metric}" for metric, mode in zip(metrics, modes, strict=False))
