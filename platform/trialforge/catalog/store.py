"""Reads and writes of the catalog; the only code that touches its tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from trialforge.catalog.tables import Base, JobRecord, SweepRecord, SweepState, TrialRecord
from trialforge.errors import NotFoundError
from trialforge.home import redact, sqlite_file


def new_sweep_id() -> str:
    """A short id users can type (`trialforge sweep show 3f9a2c1b`)."""
    return uuid.uuid4().hex[:8]


def catalog_exists(url: str) -> bool:
    """False for a SQLite catalog whose file is not there yet (nothing has run): reading
    commands then show an empty catalog instead of creating files."""
    path = sqlite_file(url)
    return path is None or path.exists()


def make_engine(url: str) -> Engine:
    """An engine for `url`; sqlite waits for locks and uses WAL so readers never block."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


#: Columns added after the first release: (table, column, SQL type). `create_all` makes
#: new tables whole; a catalog made by an older trialforge gains them here.
ADDED_COLUMNS = [
    ("trialforge_sweeps", "pareto_front", "TEXT"),
    ("trialforge_sweeps", "driver", "VARCHAR(300)"),
    ("trialforge_sweeps", "test_value", "FLOAT"),
    ("trialforge_sweeps", "confirmed", "TEXT"),
    ("trialforge_sweeps", "stop_reason", "TEXT"),
    ("trialforge_trials", "stage", "VARCHAR(8)"),
    ("trialforge_trials", "config_id", "VARCHAR(16)"),
    ("trialforge_trials", "seed", "INTEGER"),
    ("trialforge_trials", "infeasible", "TEXT"),
    ("trialforge_trials", "origin", "VARCHAR(100)"),
    ("trialforge_sweeps", "warm_start", "TEXT"),
]


def migrate(engine: Engine) -> None:
    """Add the columns an older catalog lacks (additive only: nothing is rewritten)."""
    existing = inspect(engine)
    for table, column, sql_type in ADDED_COLUMNS:
        if column not in {c["name"] for c in existing.get_columns(table)}:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))


class Catalog:
    """The platform's own record of sweeps, in any SQLAlchemy database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def add_sweep(self, record: SweepRecord) -> SweepRecord:
        with self._sessions.begin() as session:
            session.add(record)
        return record

    def update_sweep(self, sweep_id: str, **fields: Any) -> SweepRecord:
        with self._sessions.begin() as session:
            record = self._get(session, sweep_id)
            for key, value in fields.items():
                setattr(record, key, value)
        return record

    def finish_sweep(self, sweep_id: str, state: SweepState, **fields: Any) -> SweepRecord:
        return self.update_sweep(
            sweep_id, state=state.value, finished_at=datetime.now(timezone.utc), **fields
        )

    def get_sweep(self, id_or_prefix: str) -> SweepRecord:
        """A sweep by its id, or by a prefix that only one id starts with."""
        with self._sessions() as session:
            return self._get(session, id_or_prefix)

    def list_sweeps(self, limit: int | None = None) -> Sequence[SweepRecord]:
        query = select(SweepRecord).order_by(SweepRecord.created_at.desc()).limit(limit)
        with self._sessions() as session:
            return session.scalars(query).all()

    def record_trial(self, record: TrialRecord) -> None:
        """Record how a trial ended (again, if Ray retried or a resume finished it)."""
        with self._sessions.begin() as session:
            session.merge(record)

    def set_trial_runs(self, sweep_id: str, run_ids: dict[str, str]) -> None:
        """Name each trial's MLflow run (known once the driver's writes have arrived)."""
        with self._sessions.begin() as session:
            for record in session.scalars(select(TrialRecord).where(
                    TrialRecord.sweep_id == sweep_id, TrialRecord.run_id.is_(None))):
                record.run_id = run_ids.get(record.trial_id)

    def list_trials(self, sweep_id: str) -> Sequence[TrialRecord]:
        query = (select(TrialRecord).where(TrialRecord.sweep_id == sweep_id)
                 .order_by(TrialRecord.ended_at))
        with self._sessions() as session:
            return session.scalars(query).all()

    def add_job(self, record: JobRecord) -> JobRecord:
        with self._sessions.begin() as session:
            session.add(record)
        return record

    def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        with self._sessions.begin() as session:
            record = _by_id(session, JobRecord, job_id, self.url)
            for key, value in fields.items():
                setattr(record, key, value)
        return record

    def get_job(self, id_or_prefix: str) -> JobRecord:
        """A job by its submission id, a prefix only it starts with, or its sweep's id."""
        with self._sessions() as session:
            by_sweep = session.scalars(
                select(JobRecord).where(JobRecord.sweep_id == id_or_prefix)).first()
            return by_sweep or _by_id(session, JobRecord, id_or_prefix, self.url)

    def list_jobs(self, limit: int | None = None) -> Sequence[JobRecord]:
        query = select(JobRecord).order_by(JobRecord.submitted_at.desc()).limit(limit)
        with self._sessions() as session:
            return session.scalars(query).all()

    def _get(self, session: Session, id_or_prefix: str) -> SweepRecord:
        return _by_id(session, SweepRecord, id_or_prefix, self.url)

    def close(self) -> None:
        self.engine.dispose()


Row = TypeVar("Row", SweepRecord, JobRecord)


def _by_id(session: Session, table: type[Row], id_or_prefix: str, url: str) -> Row:
    """The row whose id is `id_or_prefix`, or the only one whose id starts with it."""
    noun = "sweep" if table is SweepRecord else "job"
    record = session.get(table, id_or_prefix)
    if record is not None:
        return record
    matches = session.scalars(
        select(table).where(table.id.startswith(id_or_prefix, autoescape=True))
    ).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no {noun} {id_or_prefix!r} in {redact(url)}; `trialforge {noun} list` shows them"
        )
    raise NotFoundError(f"{id_or_prefix!r} matches {len(matches)} {noun}s; give more of the id")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
