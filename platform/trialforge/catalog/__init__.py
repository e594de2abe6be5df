"""The platform's catalog (SQLAlchemy): sweeps, their state, and the ids across stores."""

from trialforge.catalog.store import Catalog, catalog_exists, new_sweep_id, utcnow
from trialforge.catalog.tables import SweepRecord, SweepState

__all__ = ["Catalog", "SweepRecord", "SweepState", "catalog_exists", "new_sweep_id", "utcnow"]
