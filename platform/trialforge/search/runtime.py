"""Connecting the driver to Ray: a local instance, or the cluster `RAY_ADDRESS` names."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import ray

from trialforge.models import BUILTIN_FAMILIES
from trialforge.spec import SweepSpec

RAY_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for its driver


def connect_ray(spec: SweepSpec) -> bool:
    """Start or join Ray for a sweep of `spec`; True if this call started it (and owns it)."""
    # Tune's console tables would fight the CLI's progress line; trialforge reports progress.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's CSV, JSON and TensorBoard files per result duplicate MLflow and cost the driver
    # time on every epoch of every trial.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # ... so Tune's analysis of the results warns, for every trial, that it found no files.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    needs_workers = spec.train.workers > 1 or spec.train.use_gpu
    runtime_env: dict[str, object] | None = None
    # Inside a Ray job the driver keeps the job's runtime env (its working dir holds the user's
    # code): one given here would replace it, and Ray would delete the job's folder mid-run.
    if (modules := user_code(spec)) and not os.environ.get(RAY_JOB_CONFIG):
        runtime_env = {"py_modules": modules}
    ray.init(
        address=os.environ.get("RAY_ADDRESS") or None,
        # Train V2 needs the dashboard's State API to free a stopped trial's worker CPUs.
        include_dashboard=needs_workers,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env=runtime_env,
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


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))
