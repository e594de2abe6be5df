"""The platform's catalog (SQLAlchemy): sweeps, their trials, their state, and the ids
across stores."""

from trialforge.catalog.store import Catalog, catalog_exists, new_sweep_id, utcnow
from trialforge.catalog.tables import JobRecord, SweepRecord, SweepState, TrialRecord

__all__ = [
    "Catalog", "JobRecord", "SweepRecord", "SweepState", "TrialRecord", "catalog_exists",
    "new_sweep_id", "utcnow",
]
