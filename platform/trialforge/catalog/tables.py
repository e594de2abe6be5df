"""The catalog's tables (SQLAlchemy 2.0 ORM): which sweep ran where and how it ended.

Prefixed `trialforge_` because they share a database with Optuna's study tables.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class SweepState(str, enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Base(DeclarativeBase):
    pass


class SweepRecord(Base):
    """One sweep: its spec, its state, and the ids that tie Ray, Optuna and MLflow together."""

    __tablename__ = "trialforge_sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    spec_yaml: Mapped[str] = mapped_column(Text)
    family: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=SweepState.RUNNING.value, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    study_name: Mapped[str] = mapped_column(String(100))
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64))
    mlflow_parent_run_id: Mapped[str | None] = mapped_column(String(64))
    ray_storage_path: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(3))
    best_value: Mapped[float | None] = mapped_column(Float)
    # The champion's objective on the test split (`data.test_fraction`), scored once.
    test_value: Mapped[float | None] = mapped_column(Float)
    best_run_id: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(300))
    trials_total: Mapped[int] = mapped_column(Integer, default=0)
    trials_completed: Mapped[int] = mapped_column(Integer, default=0)
    trials_stopped: Mapped[int] = mapped_column(Integer, default=0)
    trials_failed: Mapped[int] = mapped_column(Integer, default=0)
    epochs_trained: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # A multi-objective sweep's Pareto front: JSON [{"params": ..., "values": ...}, ...].
    pareto_front: Mapped[str | None] = mapped_column(Text)
    # The confirm stage's configurations, best mean first: JSON [{"config_id", "params",
    # "values", "mean", "low", "high", "seeds", "trial_ids"}, ...] (`search.confirm`).
    confirmed: Mapped[str | None] = mapped_column(Text)
    # Why the search ended early (`search.stop`): the condition that fired.
    stop_reason: Mapped[str | None] = mapped_column(Text)
    # `search.warm_start`: JSON {"sources": {sweep id: name}, "added": n, "first": n,
    # "skipped": {reason: count}}, what the sampler started from.
    warm_start: Mapped[str | None] = mapped_column(Text)
    # `host:pid:start` of the process driving it: `sweep resume` refuses a live one.
    driver: Mapped[str | None] = mapped_column(String(300))


class JobRecord(Base):
    """A sweep submitted to a Ray cluster as a Ray job: where, what, and how it ended.

    The state mirrors Ray's job status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), as last
    seen by `trialforge job ...`; the sweep it runs has its own row, with the same sweep id.
    """

    __tablename__ = "trialforge_jobs"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # Ray's submission id
    cluster: Mapped[str] = mapped_column(String(500))
    sweep_id: Mapped[str] = mapped_column(String(32), index=True)
    spec_name: Mapped[str] = mapped_column(String(100))
    entrypoint: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    message: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrialRecord(Base):
    """How one trial of a sweep ended: its state, and the kind of failure and why."""

    __tablename__ = "trialforge_trials"

    sweep_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Tune's, MLflow's tag
    run_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # completed, stopped_early, diverged, failed
    failure: Mapped[str | None] = mapped_column(String(16), index=True)  # train.failures kinds
    reason: Mapped[str | None] = mapped_column(Text)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage: Mapped[str | None] = mapped_column(String(8))  # search, or confirm
    config_id: Mapped[str | None] = mapped_column(String(16), index=True)  # knobs, not seed
    seed: Mapped[int | None] = mapped_column(Integer)
    # Which `search.constraints` its best epoch broke (None: feasible, or no constraints).
    infeasible: Mapped[str | None] = mapped_column(Text)
    # `search.warm_start`: the earlier sweep and trial whose knobs it re-evaluated.
    origin: Mapped[str | None] = mapped_column(String(100))
