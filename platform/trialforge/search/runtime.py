"""Connecting the driver to Ray: a local instance, or the cluster `RAY_ADDRESS` names.

A local Ray takes seconds to start, mostly waiting on its own processes. `start_ray_soon`
begins that on a thread of its own as soon as the spec is known, so Ray comes up while the
driver imports its libraries and makes its stores ready; `connect_ray` then waits for it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import ray

from trialforge.models import BUILTIN_FAMILIES
from trialforge.spec import SweepSpec
from trialforge.spec.gpus import require_gpus

RAY_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for its driver


_starting: Future[bool] | None = None
_starting_lock = threading.Lock()
# Off the main thread Ray cannot set its SIGTERM handler, and says so; the CLI sets its own
# (a stopped job ends as interrupted).
logging.getLogger("ray._private.worker").addFilter(
    lambda record: "SIGTERM handler is not set" not in record.getMessage())


def start_ray_soon(spec: SweepSpec) -> None:
    """Begin starting (or joining) Ray for `spec` now, on a thread; see `connect_ray`."""
    global _starting
    with _starting_lock:
        if _starting is None and not ray.is_initialized():
            _starting = Future()
            threading.Thread(target=_start_and_stay, args=(spec, _starting), daemon=True,
                             name="ray-start").start()


def connect_ray(spec: SweepSpec) -> bool:
    """Start or join Ray for a sweep of `spec` (or wait for `start_ray_soon`'s start); True
    if this process started it (and owns it)."""
    global _starting
    with _starting_lock:
        starting, _starting = _starting, None
    return starting.result() if starting is not None else _init_ray(spec)


def _start_and_stay(spec: SweepSpec, started: Future[bool]) -> None:
    try:
        started.set_result(_init_ray(spec))
    except BaseException as exc:
        started.set_exception(exc)
        return
    # The thread that started Ray must outlive it: when it ends, Ray's connection to its
    # object store closes with it, and the driver's next call to Ray ends the process.
    while ray.is_initialized():
        time.sleep(2.0)


def _init_ray(spec: SweepSpec) -> bool:
    # Tune's console tables would fight the CLI's progress line; trialforge reports progress.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's CSV, JSON and TensorBoard files per result duplicate MLflow and cost the driver
    # time on every epoch of every trial.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # ... so Tune's analysis of the results warns, for every trial, that it found no files.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    needs_workers = spec.train.workers > 1  # one-worker trials (CPU or GPU) run in-process
    runtime_env: dict[str, object] | None = None
    # Inside a Ray job the driver keeps the job's runtime env (its working dir holds the user's
    # code): one given here would replace it, and Ray would delete the job's folder mid-run.
    if (modules := user_code(spec)) and not os.environ.get(RAY_JOB_CONFIG):
        runtime_env = {"py_modules": modules}
    address = os.environ.get("RAY_ADDRESS") or None
    ray.init(
        address=address,
        # Train V2 needs the dashboard's State API to free a stopped trial's worker CPUs.
        include_dashboard=needs_workers,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env=runtime_env,
        # A new local Ray starts one idle worker per CPU (~1 CPU-s each) that trials never
        # use: Tune's actors carry a runtime env of their own, so they start their own.
        _system_config=None if address else {"prestart_worker_first_driver": False},
    )
    return True


def user_code(spec: SweepSpec) -> list[str]:
    """Folders of a user's own builder that Ray workers must import (unless installed)."""
    family = spec.model.family
    if family in BUILTIN_FAMILIES:
        return []
    top = family.partition(":")[0].split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None:
        return []
    location = (
        Path(next(iter(found.submodule_search_locations)))
        if found.submodule_search_locations
        else Path(found.origin or "")
    )
    if "site-packages" in location.parts or not location.exists():
        return []
    return [str(location)]


def check_gpus(spec: SweepSpec) -> None:
    """Refuse a GPU sweep at once where Ray has too few GPUs: its trials would wait for them
    forever."""
    if not spec.train.use_gpu:
        return
    with _starting_lock:
        starting = _starting
    if starting is not None:
        starting.result()  # Ray's start, begun by `start_ray_soon`, stays `connect_ray`'s
    require_gpus(spec.train, ray.cluster_resources(),
                 os.environ.get("RAY_ADDRESS") or "the local Ray",
                 "run where Ray has GPUs (RAY_ADDRESS, trialforge job submit)")


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))
