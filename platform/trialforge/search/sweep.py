"""Run a sweep: Ray Tune with Optuna's TPE and a scheduler, trials tracked in MLflow, the best
model registered, the sweep recorded in the catalog.

Every store is opened by the driver before any trial starts, and closed whatever happens:
no catalog row stays `running` and no MLflow run stays RUNNING after `run_sweep` returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from trialforge.catalog import (
    Catalog,
    SweepRecord,
    SweepState,
    new_sweep_id,
    utcnow,
)
from trialforge.errors import SpecError, SweepFailedError
from trialforge.home import Home, resolve_home
from trialforge.registry import RegisteredVersion, register_best_model
from trialforge.registry.versions import best_checkpoint
from trialforge.search.champion import champion
from trialforge.search.confirm import (
    CONFIRM,
    SEARCH,
    Confirmed,
    best_seed,
    confirm_points,
    confirmed,
    top_configs,
)
from trialforge.search.constraints import Constraints
from trialforge.search.fail_fast import FailFast
from trialforge.search.holdout import holdout_metric, score_on_test
from trialforge.search.inputs import Prepared
from trialforge.search.liveness import this_process
from trialforge.search.monitor import TrialMonitor
from trialforge.search.phases import Phases
from trialforge.search.progress import BestTrial, Progress
from trialforge.search.runtime import check_gpus, connect_ray, start_ray_soon
from trialforge.search.searcher import fail_running_trials, pareto_front
from trialforge.search.stop_rules import SweepStop
from trialforge.search.stores import create_stores
from trialforge.search.trial_records import describe_trial, record_trial
from trialforge.search.tuner import build_confirm_tuner, build_tuner, optuna_storage, study_name
from trialforge.search.warm_start import WarmStart
from trialforge.search.warm_start import gather as gather_warm_start
from trialforge.spec import SweepSpec
from trialforge.tracking import TrackingTarget
from trialforge.train.contract import TrialState
from trialforge.train.trial import TrialContext

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
    # The champion's metrics on the test split (`data.test_fraction`), scored once.
    test: dict[str, float]
    # The confirm stage's configurations, best mean first (`search.confirm`; else empty).
    confirmed: list[Confirmed]
    # Why the search ended early (`search.stop`), None when it ran its budget.
    stop_reason: str | None


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
    if spec.reads_user_inputs():
        # Files and registry models are checked before anything is written: bad input is an
        # error with no catalog row, no MLflow run and no Ray started.
        with phases("data"):
            prepared.fill_inputs(spec, home)
    # Earlier sweeps are read before anything is written: an unknown one is a SpecError.
    warm = gather_warm_start(spec, home) if spec.search.warm_start else None
    start_ray_soon(spec)  # Ray comes up while the stores are made ready
    if spec.train.use_gpu:
        _refuse_without_gpus(spec)  # before anything is written
    home.create()
    with phases("stores"):
        create_stores(home)
        catalog = Catalog(home.db_url)
        sweep_id = sweep_id or new_sweep_id()
        catalog.add_sweep(
            SweepRecord(
                id=sweep_id, name=spec.name, spec_yaml=spec.to_yaml(), family=spec.model.family,
                state=SweepState.RUNNING.value, created_at=utcnow(),
                study_name=study_name(sweep_id), ray_storage_path=f"{home.ray_results}/{sweep_id}",
                metric=spec.search.objective, mode=spec.search.direction,
                trials_total=spec.search.trials, driver=this_process(),
                warm_start=warm.to_json() if warm is not None else None,
            )
        )
    return drive_sweep(
        SweepRun(spec, home, catalog, sweep_id, f"{home.ray_results}/{sweep_id}", phases,
                 prepared, track, warm=warm),
        on_progress,
    )


@dataclass
class SweepRun:
    """One run of a sweep's driver: a new sweep, or a resumed one (`resumed_from` its
    parent MLflow run, None when it had none)."""

    spec: SweepSpec
    home: Home
    catalog: Catalog
    sweep_id: str
    experiment_path: str  # Tune's experiment folder
    phases: Phases
    prepared: Prepared
    track: bool
    resumed: bool = False
    target: TrackingTarget | None = None  # a resumed sweep's parent run
    warm: WarmStart | None = None  # what `search.warm_start` found (a new sweep's)


def drive_sweep(
    run: SweepRun, on_progress: Callable[[Progress], None] | None = None
) -> SweepResult:
    """Start Ray, run the trials, register the best model and record the outcome.

    Whatever happens, the catalog row and every MLflow run end in a final state, and no
    Optuna trial is left RUNNING; the catalog is closed.
    """
    spec, home, catalog, sweep_id, phases, prepared = (
        run.spec, run.home, run.catalog, run.sweep_id, run.phases, run.prepared)
    progress = Progress(
        total=spec.search.trials, metric=spec.search.objective, mode=spec.search.direction,
        max_epochs=spec.train.epochs,
    )
    monitor: TrialMonitor | None = None
    owns_ray = False
    ray_stopping: threading.Thread | None = None
    try:
        # MLflow's store and the data are made ready while Ray starts (which mostly waits on
        # its processes): start-up takes the longer of the two, not their sum.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-setup") as pool:
            setup = pool.submit(prepared.fill, spec, home, sweep_id, catalog, run.track, phases,
                                run.target)
            try:
                with phases("ray"):
                    owns_ray = connect_ray(spec)
                    check_gpus(spec)
            finally:
                futures.wait([setup])
            setup.result()  # the set-up's own error, if Ray started
        recorder, target = prepared.recorder, prepared.target
        context = prepared.context(spec, home)
        registers = target is not None and spec.register.enabled
        with phases("search"):
            monitor = _monitor(run, context, SEARCH, progress, on_progress)
            build_tuner(spec, home, sweep_id, run.experiment_path, monitor, context,
                        resumed=run.resumed, warm=run.warm).fit()
            stopped = monitor.sweep_stop.reason if monitor.sweep_stop else None
            _end_open_trials(monitor, run, f"the search stopped: {stopped}" if stopped
                             else "the sweep ended with it running")
            _settle(run)
        _raise_fail_fast(monitor, spec)
        ranking: list[Confirmed] = []
        if spec.search.confirm is not None:
            with phases("confirm"):
                monitor, ranking = _confirm(run, monitor, context, on_progress)
            _raise_fail_fast(monitor, spec)
        if owns_ray:  # nothing below needs Ray: it stops while the champion is registered
            ray_stopping = threading.Thread(target=_stop_ray, name="ray-stop")
            ray_stopping.start()
        best = (monitor.best_trial(best_seed(ranking[0], spec.search.direction)) if ranking
                else champion(monitor, spec, home, sweep_id))
        if best is None:
            raise SweepFailedError(_no_result_message(monitor.progress, monitor))
        front = (pareto_front(optuna_storage(home), study_name(sweep_id), spec.search.objectives)
                 if spec.search.multi_objective and spec.search.space else None)
        model, test = None, {}
        if best.run_id and target is not None and (registers or spec.data.test_fraction):
            champion_spec = spec.with_params(best.params)
            checkpoint = best_checkpoint(home.tracking_uri, best.run_id)
            if spec.data.test_fraction:
                with phases("test"):
                    test = score_on_test(champion_spec, checkpoint)
            if registers:
                with phases("register"):
                    model = register_best_model(
                        tracking_uri=home.tracking_uri, sweep_run_id=target.parent_run_id,
                        trial_run_id=best.run_id, state=checkpoint, spec=champion_spec,
                        value=best.value, sweep_id=sweep_id,
                        test_value=test.get(holdout_metric(spec.search.objective)),
                        tags=ranking[0].tags() if ranking else {})
        if recorder is not None:
            recorder.finished(
                SweepState.FINISHED.value,
                summary={f"best_{spec.search.objective}": best.value,
                         "epochs_trained": progress.epochs,
                         "trials_completed": progress.completed,
                         "trials_stopped_early": progress.stopped_early,
                         "trials_failed": progress.failed + progress.diverged,
                         "seconds": phases.total(), **test,
                         **(ranking[0].summary() if ranking else {})},
                best_params=best.params,
                pareto_front=front,
                reason=f"stopped early: {stopped}" if stopped else None,
            )
            recorder.flush()
        catalog.finish_sweep(
            sweep_id, SweepState.FINISHED, best_value=best.value, best_run_id=best.run_id,
            model_version=f"{model.name}/{model.version}" if model else None,
            pareto_front=json.dumps(front) if front is not None else None,
            test_value=test.get(holdout_metric(spec.search.objective)),
            confirmed=json.dumps([entry.to_dict() for entry in ranking]) if ranking else None,
            stop_reason=stopped,
            **_counts(progress),
        )
        return SweepResult(
            sweep_id, SweepState.FINISHED, spec, progress, best, model,
            target.experiment_id if target else None,
            target.parent_run_id if target else None,
            phases.total(), dict(phases), test, ranking, stopped,
        )
    except BaseException as exc:
        state = SweepState.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else SweepState.FAILED
        error = str(exc) or type(exc).__name__
        _end_open_trials(monitor, run, f"sweep {state.value}: {error}")
        if prepared.recorder is not None:
            prepared.recorder.finished(state.value, {}, {}, reason=error)
        try:
            _settle(run)
        except Exception as lost:  # the sweep's own error is the one to raise
            # MLflow stayed away (TrackingUnavailableError): its runs stay RUNNING, and what
            # they lack waits in the journal (`sweep resume` sends it); or it refused a
            # write. The catalog still records how the sweep ended.
            logger.error("%s", lost)
        catalog.finish_sweep(sweep_id, state, error=error, **_counts(progress))
        raise
    finally:
        if prepared.recorder is not None:
            prepared.recorder.close()
        catalog.close()
        if ray_stopping is not None:
            ray_stopping.join()
        elif owns_ray:
            _stop_ray()


def _refuse_without_gpus(spec: SweepSpec) -> None:
    try:
        check_gpus(spec)
    except SpecError:
        if connect_ray(spec):
            _stop_ray()
        raise


def _stop_ray() -> None:
    import ray

    ray.shutdown()


def _end_open_trials(monitor: TrialMonitor | None, run: SweepRun, reason: str) -> None:
    """No trial stays RUNNING, in MLflow (once its writes arrive) or in Optuna, once the
    sweep is over."""
    if monitor is not None:
        monitor.interrupt_open_trials(reason)
    if run.prepared.recorder is not None:
        run.prepared.recorder.end_orphans(reason)
    # KeyError: the study was never created, the sweep failed before its first trial.
    with contextlib.suppress(KeyError):
        fail_running_trials(optuna_storage(run.home), study_name(run.sweep_id))


def _settle(run: SweepRun) -> None:
    """Wait until every write of the sweep's runs has arrived (or raise, leaving them in the
    journal, if MLflow stayed away); then the catalog learns each trial's run."""
    if run.prepared.recorder is not None:
        run.prepared.recorder.flush()
        run.catalog.set_trial_runs(run.sweep_id, run.prepared.recorder.run_ids())


def _monitor(run: SweepRun, context: TrialContext, stage: str, progress: Progress,
             on_progress: Callable[[Progress], None] | None) -> TrialMonitor:
    """The Tune callback of one stage's trials: MLflow runs tagged with the stage, catalog
    rows, fail-fast, and in the search the stop rules (`search.stop`)."""
    search = run.spec.search
    return TrialMonitor(
        progress, run.prepared.recorder,
        describe=functools.partial(describe_trial, context, stage, run.warm),
        on_progress=on_progress,
        on_trial_end=functools.partial(record_trial, run.catalog, run.sweep_id, stage,
                                       run.spec.seed, run.warm),
        fail_fast=FailFast(search.fail_fast),
        sweep_stop=SweepStop(search.stop, progress) if search.stop and stage == SEARCH else None,
        constraints=Constraints(search.constraints) if search.constraints else None)


def _confirm(run: SweepRun, search: TrialMonitor, context: TrialContext,
             on_progress: Callable[[Progress], None] | None,
             ) -> tuple[TrialMonitor, list[Confirmed]]:
    """Retrain the search's top configurations with new seeds (`search.confirm`): the
    confirm stage's monitor, and its configurations, best mean first."""
    spec = run.spec
    assert spec.search.confirm is not None
    points = confirm_points(top_configs(search.trials.values(), spec.search.confirm.top_k,
                                        spec.search.direction), spec)
    progress = Progress(total=len(points), metric=spec.search.objective,
                        mode=spec.search.direction, max_epochs=spec.train.epochs, stage=CONFIRM)
    # The search's split stays whatever seed a trial trains with.
    pinned = dataclasses.replace(
        context, spec=spec.with_params({"data.split_seed": spec.split_seed}))
    monitor = _monitor(run, pinned, CONFIRM, progress, on_progress)
    if points:
        build_confirm_tuner(spec, f"{run.experiment_path}-confirm", monitor, pinned,
                            points).fit()
        _end_open_trials(monitor, run, "the confirm stage ended with it running")
        _settle(run)
    return monitor, confirmed(monitor.trials.values(), spec.search.direction)


def _raise_fail_fast(monitor: TrialMonitor, spec: SweepSpec) -> None:
    if monitor.fail_fast.error is not None:
        raise SweepFailedError(
            f"stopped: the first {spec.search.fail_fast} trials all failed with the same "
            f"error: {monitor.fail_fast.error}")


def _no_result_message(progress: Progress, monitor: TrialMonitor) -> str:
    errors = [ledger.reason for ledger in monitor.trials.values()
              if ledger.state == TrialState.FAILED.value and ledger.reason]
    first = f"; first error: {errors[0]}" if errors else ""
    infeasible = [ledger.infeasible for ledger in monitor.trials.values() if ledger.infeasible]
    if infeasible:
        return (f"no trial met search.constraints ({len(infeasible)} infeasible, e.g. "
                f"{infeasible[0]}): nothing is registered; loosen the bounds or search "
                "smaller models")
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
