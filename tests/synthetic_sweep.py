"""A finished sweep of many runs, written straight into real stores (no training).

The dashboard's scale tests and `benchmarks/dashboard.py` need a sweep of 1,000 runs; training
one would take an hour. This writes what a sweep leaves behind, through the same clients a
sweep uses: MLflow's (a parent run, a child run per trial with params, per-epoch metrics and
tags), Optuna's (the study, each trial carrying its Tune trial id) and the catalog's row.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from trialforge.catalog import Catalog, SweepRecord
from trialforge.home import Home
from trialforge.tracking.tags import (
    TAG_BEST_EPOCH,
    TAG_KIND,
    TAG_REASON,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
)

DISTRIBUTIONS = {
    "train.lr": FloatDistribution(1e-4, 1e-1, log=True),
    "model.dropout": FloatDistribution(0.0, 0.6),
    "model.hidden_layers": IntDistribution(1, 4),
    "model.batchnorm": CategoricalDistribution((True, False)),
    "model.activation": CategoricalDistribution(("relu", "tanh", "sigmoid")),
}
RUNG_EPOCHS = (2, 6)  # where a synthetic scheduler stops the weaker trials


def write_sweep(home: Home, runs: int, epochs: int = 20, seed: int = 0,
                sweep_id: str = "synth000") -> str:
    """Write a finished sweep of `runs` trials of up to `epochs` epochs; returns its id."""
    rng = np.random.default_rng(seed)
    home.create()
    client = MlflowClient(home.tracking_uri)
    experiment_id = client.create_experiment(
        f"synthetic-{sweep_id}", artifact_location=(home.artifacts / sweep_id).as_uri())
    parent = client.create_run(experiment_id, run_name=f"sweep-{sweep_id}",
                               tags={TAG_SWEEP: sweep_id, TAG_KIND: "sweep"}).info.run_id
    study = optuna.create_study(storage=home.db_url, study_name=f"trialforge-{sweep_id}",
                                direction="maximize")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    clock = start
    counts = {"completed": 0, "stopped_early": 0, "diverged": 0}
    best = -math.inf
    frozen = []
    for number in range(runs):
        params = {name: _sample(rng, dist) for name, dist in DISTRIBUTIONS.items()}
        trial_id = f"{number:08x}"
        curve = _curve(rng, params, epochs)
        state = "completed"
        if not np.isfinite(curve).all():
            state, curve = "diverged", curve[: int(np.argmin(np.isfinite(curve))) + 1]
        elif number > 20:
            for rung, bar in zip(RUNG_EPOCHS, (0.3, 0.7), strict=True):  # weak trials stop
                if curve[rung - 1] < bar:
                    state, curve = "stopped_early", curve[:rung]
                    break
        counts[state] += 1
        seconds = 0.5 * len(curve)
        began = int(clock.timestamp() * 1000)
        run = client.create_run(
            experiment_id, start_time=began, run_name=f"trial_{trial_id}",
            tags={MLFLOW_PARENT_RUN_ID: parent, TAG_SWEEP: sweep_id, TAG_TRIAL: trial_id,
                  TAG_KIND: "trial"})
        metrics = [
            Metric(key, float(value), began + int(epoch * 500), epoch)
            for epoch, accuracy in enumerate(curve, start=1)
            for key, value in (("val_accuracy", accuracy), ("val_loss", _loss(accuracy)),
                               ("train_loss", _loss(accuracy) * 0.8))
        ]
        finite = np.nan_to_num(curve, nan=-1.0)
        tags = [RunTag(TAG_STATE, state)]
        if state == "diverged":
            tags.append(RunTag(TAG_REASON, "loss became NaN"))
        else:
            tags.append(RunTag(TAG_BEST_EPOCH, str(int(np.argmax(finite)) + 1)))
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param(k, str(v)) for k, v in params.items()], tags=tags)
        client.set_terminated(run.info.run_id, "FAILED" if state == "diverged" else "FINISHED",
                              end_time=began + int(seconds * 1000))
        value = float(finite.max())
        best = max(best, value)
        frozen.append(optuna.trial.create_trial(
            params=params, distributions=DISTRIBUTIONS, user_attrs={TAG_TRIAL: trial_id},
            value=None if state == "diverged" else value,
            state=(optuna.trial.TrialState.FAIL if state == "diverged"
                   else optuna.trial.TrialState.COMPLETE),
        ))
        clock += timedelta(seconds=seconds / 2)  # two trials at a time
    study.add_trials(frozen)
    client.set_terminated(parent, end_time=int(clock.timestamp() * 1000))
    catalog = Catalog(home.db_url)
    try:
        catalog.add_sweep(SweepRecord(
            id=sweep_id, name=f"synthetic-{runs}", spec_yaml="name: synthetic\n",
            family="mlp", state="finished", created_at=start, finished_at=clock,
            study_name=f"trialforge-{sweep_id}", mlflow_experiment_id=experiment_id,
            mlflow_parent_run_id=parent, metric="val_accuracy", mode="max", best_value=best,
            trials_total=runs, trials_completed=counts["completed"],
            trials_stopped=counts["stopped_early"], trials_failed=counts["diverged"],
            epochs_trained=0,
        ))
    finally:
        catalog.close()
    return sweep_id


def _sample(rng: np.random.Generator, dist: optuna.distributions.BaseDistribution) -> object:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        return int(rng.integers(dist.low, dist.high + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    return float(rng.uniform(dist.low, dist.high))


def _curve(rng: np.random.Generator, params: dict[str, object], epochs: int) -> np.ndarray:
    """Accuracy by epoch: fast for a good lr, slower with sigmoid, NaN past lr 0.07 sometimes."""
    lr = float(params["train.lr"])  # type: ignore[arg-type]
    speed = 0.5 * math.exp(-abs(math.log10(lr) + 2.5)) * (0.5 if params["model.activation"]
                                                           == "sigmoid" else 1.0)
    ceiling = 0.98 - 0.1 * float(params["model.dropout"])  # type: ignore[arg-type]
    steps = np.arange(1, epochs + 1)
    curve = ceiling * (1 - np.exp(-speed * steps)) + rng.normal(0, 0.01, epochs)
    if lr > 0.07 and rng.random() < 0.5:
        curve[int(rng.integers(1, epochs)):] = np.nan
    return np.clip(curve, 0.0, 1.0)


def _loss(accuracy: float) -> float:
    return float(-math.log(max(accuracy, 1e-3))) if math.isfinite(accuracy) else math.nan
