"""The platform's catalog (SQLAlchemy): sweeps, their state, and the ids across stores."""

from trialforge.catalog.store import Catalog, catalog_exists, new_sweep_id, utcnow
from trialforge.catalog.tables import JobRecord, SweepRecord, SweepState

__all__ = [
    "Catalog", "JobRecord", "SweepRecord", "SweepState", "catalog_exists", "new_sweep_id",
    "utcnow",
]
