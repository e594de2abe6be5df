"""Run a sweep: Ray Tune with Optuna's TPE and a scheduler, trials tracked in MLflow, the best
model registered, the sweep recorded in the catalog.

Every store is opened by the driver before any trial starts, and closed whatever happens:
no catalog row stays `running` and no MLflow run stays RUNNING after `run_sweep` returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from ray import tune

from trialforge.catalog import Catalog, SweepRecord, SweepState, new_sweep_id, utcnow
from trialforge.errors import SweepFailedError
from trialforge.home import Home, resolve_home
from trialforge.registry import RegisteredVersion, register_best_model
from trialforge.search.inputs import Prepared, reads_user_inputs
from trialforge.search.monitor import BestTrial, Progress, TrialMonitor
from trialforge.search.reconcile import finish_trial_records
from trialforge.search.runtime import cluster_cpus, connect_ray
from trialforge.search.schedulers import build_scheduler
from trialforge.search.searcher import OptunaSearcher, fail_running_trials, pareto_front
from trialforge.search.space import searcher_space, spec_point
from trialforge.spec import SweepSpec
from trialforge.tracking import SweepTracker, TrackingTarget
from trialforge.train.trial import (
    TrialContext,
    run_trial,
    runs_in_process,
    trial_resources,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """What a finished sweep produced, and where to find it."""

    sweep_id: str
    state: SweepState
    spec: SweepSpec
    progress: Progress
    best: BestTrial | None
    model: RegisteredVersion | None
    experiment_id: str | None
    parent_run_id: str | None
    seconds: float
    phases: dict[str, float]


def study_name(sweep_id: str) -> str:
    return f"trialforge-{sweep_id}"


def run_sweep(
    spec: SweepSpec,
    home: Home | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    track: bool = True,
    sweep_id: str | None = None,
) -> SweepResult:
    """Run the sweep `spec` describes and return its outcome (see `SweepResult`).

    `track=False` skips MLflow (no runs, no registered model); the catalog still records it.
    `sweep_id` is given when it was chosen before (a cluster job records it at submission).
    """
    home = home or resolve_home()
    phases = Phases()
    prepared = Prepared()
    if reads_user_inputs(spec):
        # Files and registry models are checked before anything is written: bad input is an
        # error with no catalog row, no MLflow run and no Ray started.
        with phases("data"):
            prepared.fill_inputs(spec, home)
    home.create()
    with phases("stores"):
        catalog = Catalog(home.db_url)
        sweep_id = sweep_id or new_sweep_id()
        catalog.add_sweep(
            SweepRecord(
                id=sweep_id, name=spec.name, spec_yaml=spec.to_yaml(), family=spec.model.family,
                state=SweepState.RUNNING.value, created_at=utcnow(),
                study_name=study_name(sweep_id), ray_storage_path=f"{home.ray_results}/{sweep_id}",
                metric=spec.search.objective, mode=spec.search.direction,
                trials_total=spec.search.trials,
            )
        )
    progress = Progress(
        total=spec.search.trials, metric=spec.search.objective, mode=spec.search.direction,
        max_epochs=spec.train.epochs,
    )
    tracker: SweepTracker | None = None
    target: TrackingTarget | None = None
    monitor: TrialMonitor | None = None
    owns_ray = False
    try:
        # MLflow's store and the data are made ready while Ray starts (which mostly waits on
        # its processes): start-up takes the longer of the two, not their sum.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-setup") as pool:
            setup = pool.submit(prepared.fill, spec, home, sweep_id, catalog, track, phases)
            try:
                with phases("ray"):
                    owns_ray = connect_ray(spec)
            finally:
                futures.wait([setup])
                tracker, target = prepared.tracker, prepared.target
            setup.result()  # the set-up's own error, if Ray started
        with phases("search"):
            monitor = TrialMonitor(progress, tracker, target, on_progress)
            results = _tuner(spec, sweep_id, home, monitor, prepared.context(spec, target, home)
                             ).fit()
            _close_open_trials(results, tracker, target, spec, home, sweep_id,
                               monitor.outcomes, "the sweep ended with it running")
        best = progress.best
        if best is None:
            raise SweepFailedError(_no_result_message(results, progress))
        front = (pareto_front(_optuna_storage(home), study_name(sweep_id), spec.search.objectives)
                 if spec.search.multi_objective and spec.search.space else None)
        model = None
        if tracker is not None and target is not None and spec.register.enabled and best.run_id:
            with phases("register"):
                tracker.wait_for_best_checkpoint(best.run_id, best.epoch)
                model = register_best_model(
                    tracking_uri=home.tracking_uri, sweep_run_id=target.parent_run_id,
                    trial_run_id=best.run_id, spec=spec.with_params(best.params),
                    value=best.value, sweep_id=sweep_id,
                )
        if tracker is not None and target is not None:
            tracker.finish(
                target, SweepState.FINISHED.value,
                summary={f"best_{spec.search.objective}": best.value,
                         "epochs_trained": progress.epochs,
                         "trials_completed": progress.completed,
                         "trials_stopped_early": progress.stopped_early,
                         "trials_failed": progress.failed + progress.diverged,
                         "seconds": phases.total()},
                best_params=best.params,
                pareto_front=front,
            )
        catalog.finish_sweep(
            sweep_id, SweepState.FINISHED, best_value=best.value, best_run_id=best.run_id,
            model_version=f"{model.name}/{model.version}" if model else None,
            pareto_front=json.dumps(front) if front is not None else None,
            **_counts(progress),
        )
        return SweepResult(
            sweep_id, SweepState.FINISHED, spec, progress, best, model,
            target.experiment_id if target else None,
            target.parent_run_id if target else None,
            phases.total(), dict(phases),
        )
    except BaseException as exc:
        state = SweepState.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else SweepState.FAILED
        error = str(exc) or type(exc).__name__
        outcomes = monitor.outcomes if monitor is not None else {}
        _close_open_trials(None, tracker, target, spec, home, sweep_id, outcomes,
                           f"sweep {state.value}: {error}")
        if tracker is not None and target is not None:
            tracker.finish(target, state.value, {}, {}, error=error)
        catalog.finish_sweep(sweep_id, state, error=error, **_counts(progress))
        raise
    finally:
        catalog.close()
        if owns_ray:
            import ray

            ray.shutdown()


class Phases(dict[str, float]):
    """Seconds spent in each phase of a sweep (stores, ray, search, register)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = time.monotonic()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.monotonic() - began

    def total(self) -> float:
        return time.monotonic() - self._started


def _tuner(
    spec: SweepSpec,
    sweep_id: str,
    home: Home,
    monitor: TrialMonitor,
    context: TrialContext,
) -> tune.Tuner:
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
            storage=_optuna_storage(home),
        )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=search.objective,
            mode=search.direction,
            search_alg=searcher,
            scheduler=build_scheduler(search.scheduler, spec.train.epochs),
            num_samples=search.trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=sweep_id,
            storage_path=home.ray_results,
            callbacks=[monitor],
            verbose=0,
            # The best-scored checkpoints are kept (and the latest, always): each trial's best
            # weights stay in Ray's storage even if its process ends before it uploads them.
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=search.objective,
                checkpoint_score_order=search.direction,
            ),
            failure_config=tune.FailureConfig(max_failures=spec.train.max_failures),
        ),
    )


def _close_open_trials(
    results: tune.ResultGrid | None,
    tracker: SweepTracker | None,
    target: TrackingTarget | None,
    spec: SweepSpec,
    home: Home,
    sweep_id: str,
    outcomes: dict[str, tuple[str, str | None]],
    reason: str,
) -> None:
    """No trial stays RUNNING, in MLflow or in Optuna, once the sweep is over."""
    if tracker is not None and target is not None:
        finish_trial_records(results, tracker, target, outcomes, spec.search.objective,
                             spec.search.direction, reason)
    # KeyError: the study was never created, the sweep failed before its first trial.
    with contextlib.suppress(KeyError):
        fail_running_trials(_optuna_storage(home), study_name(sweep_id))


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    if spec.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    # Few random start-up trials on small budgets, so TPE gets to model most of them;
    # the constant liar keeps concurrent trials from sampling the same point.
    startup = max(2, min(10, spec.search.trials // 3))
    return optuna.samplers.TPESampler(
        seed=spec.seed, n_startup_trials=startup, multivariate=True, constant_liar=True
    )


def _optuna_storage(home: Home) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": 30}} if home.db_url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(home.db_url, engine_kwargs=engine_kwargs)


def _no_result_message(results: tune.ResultGrid, progress: Progress) -> str:
    errors = [str(error).strip().splitlines()[-1] for error in results.errors if str(error)]
    first = f"; first error: {errors[0]}" if errors else ""
    return (
        f"no trial reported a finite {progress.metric} "
        f"({progress.failed} failed, {progress.diverged} diverged){first}"
    )


def _counts(progress: Progress) -> dict[str, int]:
    return {
        "trials_completed": progress.completed,
        "trials_stopped": progress.stopped_early,
        "trials_failed": progress.failed + progress.diverged,
        "epochs_trained": progress.epochs,
    }
