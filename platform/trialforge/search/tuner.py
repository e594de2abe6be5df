"""The Tuner of a sweep: Optuna's TPE as searcher, a scheduler, the trial trainable, and
Tune's storage, failure and checkpoint settings; restored from its folder on resume."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import optuna
from ray import tune

from trialforge.home import Home
from trialforge.search.monitor import TrialMonitor
from trialforge.search.runtime import cluster_cpus
from trialforge.search.schedulers import SchedulerMemory, build_scheduler
from trialforge.search.searcher import OptunaSearcher, fail_running_trials
from trialforge.search.space import searcher_space, spec_point
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
) -> tune.Tuner:
    """The Tuner of a sweep: a new one, or for a `resumed` sweep one restored from its
    experiment folder (Tune's own if the driver died before Tune first saved it)."""
    search = spec.search
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=context), trial_resources(spec)
    )
    concurrency = search.concurrency
    if not runs_in_process(spec):
        # Each trial starts its own worker group; more at once than the CPUs hold would wait
        # on each other until Train's start-up times out.
        concurrency = max(1, min(concurrency, cluster_cpus() // spec.train.workers))
    # Without a space every trial trains the spec as written: nothing for Optuna to sample.
    searcher = None
    if search.space:
        first = spec_point(spec) if search.try_spec_first else None
        searcher = OptunaSearcher(
            space=searcher_space(search.space),
            # Several objectives: Optuna keeps the Pareto front; the scheduler ranks by the first.
            metric=search.objectives if search.multi_objective else search.objective,
            mode=list(search.directions) if search.multi_objective else search.direction,
            points_to_evaluate=[first] if first else None,
            sampler=_sampler(spec),
            study_name=study_name(sweep_id),
            storage=optuna_storage(home),
        )
    scheduler = build_scheduler(search.scheduler, spec.train.epochs)
    storage_path, _, name = experiment_path.rstrip("/").rpartition("/")
    tune_config = tune.TuneConfig(
        metric=search.objective,
        mode=search.direction,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=search.trials,
        max_concurrent_trials=concurrency,
        reuse_actors=True,
        trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_name,
    )
    run_config = tune.RunConfig(
        name=name,
        storage_path=storage_path,
        # The scheduler's memory rides in Tune's experiment checkpoint, like the searcher's.
        callbacks=[monitor, SchedulerMemory(scheduler)],
        stop=monitor.fail_fast,
        verbose=0,
        # The best-scored checkpoints are kept (and the latest, always): each trial's best
        # weights stay in Ray's storage even if its process ends before it uploads them.
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=search.objective,
            checkpoint_score_order=search.direction,
        ),
        failure_config=tune.FailureConfig(max_failures=spec.train.max_failures),
    )
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
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _tpe(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    # Few random start-up trials on small budgets, so TPE gets to model most of them;
    # the constant liar keeps concurrent trials from sampling the same point.
    startup = max(2, min(10, spec.search.trials // 3))
    return optuna.samplers.TPESampler(
        seed=spec.seed, n_startup_trials=startup, multivariate=True, constant_liar=True
    )


#: `search.sampler` -> Optuna's sampler for the spec, seeded by `seed`.
SAMPLERS: dict[str, Callable[[SweepSpec], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": lambda spec: optuna.samplers.RandomSampler(seed=spec.seed),
}


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    return SAMPLERS[spec.search.sampler](spec)


def optuna_storage(home: Home) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": 30}} if home.db_url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(home.db_url, engine_kwargs=engine_kwargs)


