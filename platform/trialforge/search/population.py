"""Population-based training (`search.scheduler.type: pbt | pb2`), Ray's schedulers.

A population of `search.trials` trials starts from the spec's space (drawn at random, the
spec's own point first). Every `perturbation_interval` epochs, a trial in the bottom
`quantile_fraction` takes the checkpoint of one in the top share, with its knobs, and
perturbs the mutable ones (`SearchConfig.mutations`): pbt by x0.8/x1.2 or a fresh draw, pb2
by a Gaussian-process bandit. Each exploit is told to `on_exploit`: the sweep's monitor
records its lineage on the trial's MLflow run.

No Optuna study is kept: a study's trial has one set of params, and a PBT trial trains
under a schedule of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pb2 import PB2
from ray.tune.search.basic_variant import BasicVariantGenerator

from trialforge.spec import Choice, IntRange, LogUniform, ParamSpace, SweepSpec, candidate_values

#: Told of each exploit: (trial id, the trial it copied, that trial's epoch, the new knobs).
OnExploit = Callable[[str, str, int, dict[str, Any]], None]


class _Lineage:
    """Tells `on_exploit` which trial, at which epoch, each exploit copied."""

    on_exploit: OnExploit | None = None
    _trial_state: dict[Any, Any]

    def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
        super()._exploit(tune_controller, trial, trial_to_clone)  # type: ignore[misc]
        # The result that led here carries a checkpoint Tune never registers (the trial is
        # paused first): without a skip, the trial's next checkpoint takes its folder's
        # name, overwriting weights the driver may hold as the trial's best.
        trial.storage.current_checkpoint_index += 1
        if self.on_exploit is not None:
            donor = self._trial_state[trial_to_clone].last_result or {}
            self.on_exploit(trial.trial_id, trial_to_clone.trial_id,
                            int(donor.get("epoch", 0)), dict(trial.config))


class LineagePBT(_Lineage, PopulationBasedTraining):
    """Ray's PBT, telling each exploit."""


class LineagePB2(_Lineage, PB2):
    """Ray's PB2, telling each exploit."""


def population_scheduler(spec: SweepSpec, time_attr: str,
                         on_exploit: OnExploit | None) -> TrialScheduler:
    """The spec's pbt or pb2 scheduler, counting `time_attr` (epochs)."""
    search = spec.search
    config = search.scheduler
    mutations = search.mutations()
    common: dict[str, Any] = dict(
        time_attr=time_attr,  # the metric and mode come from the TuneConfig
        perturbation_interval=config.perturbation_interval,
        quantile_fraction=config.quantile_fraction,
        # Perturbed values stay inside the space (x1.2 could take dropout past 1).
        custom_explore_fn=_Within(mutations), log_config=False)
    scheduler: LineagePBT | LineagePB2
    if config.type == "pb2":
        scheduler = LineagePB2(hyperparam_bounds={
            path: candidate_values(param) for path, param in mutations.items()}, **common)
    else:
        scheduler = LineagePBT(hyperparam_mutations={
            path: tune_domain(param) for path, param in mutations.items()},
            resample_probability=config.resample_probability, **common)
    scheduler.on_exploit = on_exploit
    return scheduler


def first_population(spec: SweepSpec, first: dict[str, Any] | None,
                     ) -> tuple[BasicVariantGenerator, dict[str, Any]]:
    """Tune's random searcher (seeded by `seed`, `first` as its first point) and the space
    it draws from."""
    space = {path: tune_domain(param) for path, param in spec.search.space.items()}
    return BasicVariantGenerator(points_to_evaluate=[first] if first else None,
                                 random_state=spec.seed), space


def tune_domain(param: ParamSpace) -> Any:
    """A space parameter as Tune's search domain."""
    if isinstance(param, Choice):
        return tune.choice(list(param.choice))
    if isinstance(param, IntRange):
        return tune.randint(param.int_[0], param.int_[1] + 1)  # Tune's high is exclusive
    low, high = candidate_values(param)
    return (tune.loguniform if isinstance(param, LogUniform) else tune.uniform)(low, high)


class _Within:
    """Clamps perturbed numbers into their space (a class: Tune pickles its scheduler)."""

    def __init__(self, mutations: dict[str, ParamSpace]) -> None:
        self.bounds = {path: candidate_values(param) for path, param in mutations.items()
                       if not isinstance(param, Choice)}

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for path, (low, high) in self.bounds.items():
            if path in config:
                value = min(max(config[path], low), high)
                config[path] = round(value) if isinstance(low, int) else float(value)
        return config
