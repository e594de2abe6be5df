"""The Tuner of a sweep: an Optuna sampler as searcher (or pbt/pb2's population), a
scheduler, the trial trainable, and Tune's storage, failure and checkpoint settings;
restored from its folder on resume."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import optuna
from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.stopper import CombinedStopper

from trialforge.home import Home
from trialforge.search.confirm import config_id
from trialforge.search.constraints import Constraints
from trialforge.search.monitor import TrialMonitor
from trialforge.search.population import first_population
from trialforge.search.runtime import cluster_cpus
from trialforge.search.schedulers import SchedulerMemory, build_scheduler
from trialforge.search.searcher import OptunaSearcher, fail_running_trials
from trialforge.search.space import searcher_space, spec_point
from trialforge.search.warm_start import WarmStart
from trialforge.spec import SweepSpec
from trialforge.train.trial import TrialContext, run_trial, runs_in_process, trial_resources


def study_name(sweep_id: str) -> str:
    return f"trialforge-{sweep_id}"


def build_tuner(
    spec: SweepSpec,
    home: Home,
    sweep_id: str,
    experiment_path: str,
    monitor: TrialMonitor,
    context: TrialContext,
    *,
    resumed: bool = False,
    warm: WarmStart | None = None,
) -> tune.Tuner:
    """The Tuner of a sweep: a new one (its sampler informed by `warm`), or for a `resumed`
    sweep one restored from its experiment folder (Tune's own if the driver died before Tune
    first saved it)."""
    search = spec.search
    first = spec_point(spec) if search.try_spec_first else None
    # Without a space every trial trains the spec as written: nothing for Optuna to sample.
    searcher: Any = None
    param_space = None
    if search.space and search.scheduler.evolves:
        searcher, param_space = first_population(spec, first)
    elif search.space:
        # An earlier sweep's best first (search.warm_start), then the spec's own point.
        points = list({config_id(point): point for point in
                       [*(warm.first if warm else []), *([first] if first else [])]}.values())
        searcher = OptunaSearcher(
            space=searcher_space(search.space),
            # Several objectives: Optuna keeps the Pareto front; the scheduler ranks by the first.
            metric=search.objectives if search.multi_objective else search.objective,
            mode=list(search.directions) if search.multi_objective else search.direction,
            points_to_evaluate=points or None,
            sampler=_sampler(spec),
            study_name=study_name(sweep_id),
            storage=optuna_storage(home),
            constraints=Constraints(search.constraints) if search.constraints else None,
        )
        if warm is not None and warm.trials and not resumed:
            study = searcher._ot_study
            assert study is not None  # created with the searcher (it has a space)
            study.add_trials(warm.trials)
    scheduler = build_scheduler(spec, monitor.exploited)
    tune_config = _tune_config(spec, searcher, scheduler, search.trials)
    # The scheduler's memory rides in Tune's experiment checkpoint, like the searcher's.
    stop = (CombinedStopper(monitor.fail_fast, monitor.sweep_stop) if monitor.sweep_stop
            else monitor.fail_fast)
    run_config = _run_config(spec, experiment_path, [monitor, SchedulerMemory(scheduler)], stop)
    trainable = _trainable(spec, context)
    if resumed and tune.Tuner.can_restore(experiment_path):
        # Unfinished trials go on from their last checkpoints (errored ones stay errors).
        tuner = tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True,
                                   resume_errored=False)
        # Tune restores the searcher's and the callbacks' state from the experiment folder,
        # but takes both configs from the tuner.pkl written when the sweep began: a scheduler
        # with none of its decisions and callbacks bound to the dead driver. Ours get that
        # state instead (there is no public way to pass them to a restored Tuner).
        tuner._local_tuner._tune_config = tune_config  # type: ignore[union-attr]
        tuner._local_tuner._run_config = run_config  # type: ignore[union-attr]
        return tuner
    if resumed and searcher is not None:
        # Killed before Tune saved its first state: nothing to restore, the search starts
        # over in the same study, whose trials of the dead driver must not stay RUNNING.
        with contextlib.suppress(KeyError):
            fail_running_trials(optuna_storage(home), study_name(sweep_id))
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                      run_config=run_config)


def build_confirm_tuner(spec: SweepSpec, experiment_path: str, monitor: TrialMonitor,
                        context: TrialContext, points: list[dict[str, Any]]) -> tune.Tuner:
    """The confirm stage's Tuner: exactly `points` (knobs and a seed each), every epoch
    trained (FIFO), in an experiment folder of its own."""
    from ray.tune.schedulers import FIFOScheduler

    # Each point is one trial: Tune counts them toward num_samples and samples nothing, but
    # wants each key in the space.
    tune_config = _tune_config(spec, BasicVariantGenerator(points_to_evaluate=points),
                               FIFOScheduler(), len(points))
    space = {key: tune.choice(list({str(p[key]): p[key] for p in points}.values()))
             for key in points[0]}
    return tune.Tuner(_trainable(spec, context), param_space=space, tune_config=tune_config,
                      run_config=_run_config(spec, experiment_path, [monitor],
                                             monitor.fail_fast))


def _trainable(spec: SweepSpec, context: TrialContext) -> Any:
    return tune.with_resources(
        tune.with_parameters(run_trial, context=context), trial_resources(spec))


def _tune_config(spec: SweepSpec, searcher: Any, scheduler: Any, trials: int,
                 ) -> tune.TuneConfig:
    concurrency = spec.search.concurrency
    if not runs_in_process(spec):
        # Each trial starts its own worker group; more at once than the CPUs hold would wait
        # on each other until Train's start-up times out.
        concurrency = max(1, min(concurrency, cluster_cpus() // spec.train.workers))
    own_cap = isinstance(searcher, BasicVariantGenerator)
    if own_cap:  # Tune caps only a Searcher's trials at once; this generator caps its own
        searcher.max_concurrent = concurrency
    return tune.TuneConfig(
        metric=spec.search.objective,
        mode=spec.search.direction,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=trials,
        max_concurrent_trials=None if own_cap else concurrency,
        reuse_actors=True,
        trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_name,
    )


def _run_config(spec: SweepSpec, experiment_path: str, callbacks: list[Any],
                stop: Any) -> tune.RunConfig:
    storage_path, _, name = experiment_path.rstrip("/").rpartition("/")
    return tune.RunConfig(
        name=name,
        storage_path=storage_path,
        callbacks=callbacks,
        stop=stop,
        verbose=0,
        # The best-scored checkpoints are kept (and the latest, always): each trial's best
        # weights stay in Ray's storage even if its process ends before it uploads them.
        # pbt/pb2 keep all: a trial may exploit any other's checkpoint of a while ago.
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None if spec.search.scheduler.evolves else 2,
            checkpoint_score_attribute=spec.search.objective,
            checkpoint_score_order=spec.search.direction,
        ),
        failure_config=tune.FailureConfig(max_failures=spec.train.max_failures),
    )


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _startup(spec: SweepSpec) -> int:
    # Few random start-up trials on small budgets, so the model-based samplers get to model
    # most of them.
    return max(2, min(10, spec.search.trials // 3))


def _tpe(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    # The constant liar keeps concurrent trials from sampling the same point.
    return optuna.samplers.TPESampler(
        seed=spec.seed, n_startup_trials=_startup(spec), multivariate=True, constant_liar=True
    )


#: `search.sampler` -> Optuna's sampler for the spec, seeded by `seed`. Samplers that model
#: numbers only (CMA-ES, QMC) draw categorical knobs at random, quietly.
SAMPLERS: dict[str, Callable[[SweepSpec], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": lambda spec: optuna.samplers.RandomSampler(seed=spec.seed),
    "gp": lambda spec: optuna.samplers.GPSampler(seed=spec.seed,
                                                 n_startup_trials=_startup(spec)),
    "cmaes": lambda spec: optuna.samplers.CmaEsSampler(
        seed=spec.seed, n_startup_trials=_startup(spec), warn_independent_sampling=False),
    "nsga2": lambda spec: optuna.samplers.NSGAIISampler(
        seed=spec.seed, population_size=max(4, min(50, spec.search.trials // 4))),
    "qmc": lambda spec: optuna.samplers.QMCSampler(seed=spec.seed,
                                                   warn_independent_sampling=False),
}


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    return SAMPLERS[spec.search.sampler](spec)


def optuna_storage(home: Home) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": 30}} if home.db_url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(home.db_url, engine_kwargs=engine_kwargs)


