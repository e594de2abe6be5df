"""Where embedded state lives: one folder, `$TRIALFORGE_HOME` (default `./.trialforge`).

Standard variables override the pieces: `MLFLOW_TRACKING_URI` (MLflow's own), `TRIALFORGE_DB`
(any SQLAlchemy URL, also used for Optuna's studies), `TRIALFORGE_RAY_STORAGE` (Tune's
`storage_path`: a folder every node sees, or `s3://...`, on a cluster) and `RAY_ADDRESS`
(Ray's own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".trialforge"


@dataclass(frozen=True)
class Home:
    """The resolved locations of every store a sweep writes to."""

    root: Path
    tracking_uri: str
    db_url: str
    ray_storage: str | None = None  # None: `ray_results/` in this home

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def ray_results(self) -> str:
        """Where Tune keeps trial checkpoints: shared storage on a cluster."""
        return self.ray_storage or str(self.root / "ray_results")

    @property
    def embedded_tracking(self) -> bool:
        """True when MLflow runs on the sqlite file inside this home (no server)."""
        return self.tracking_uri == _sqlite_url(self.root / "mlflow.db")

    def create(self) -> Home:
        """Create the folders; called only once a spec is valid, so bad input writes nothing."""
        for path in (self.root, self.artifacts):
            path.mkdir(parents=True, exist_ok=True)
        if self.ray_storage is None:
            (self.root / "ray_results").mkdir(exist_ok=True)
        return self


def resolve_home(root: str | Path | None = None) -> Home:
    """Resolve the home folder and the stores, honouring the environment variables."""
    base = Path(root or os.environ.get("TRIALFORGE_HOME") or DEFAULT_HOME).expanduser().resolve()
    return Home(
        root=base,
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or _sqlite_url(base / "mlflow.db"),
        db_url=os.environ.get("TRIALFORGE_DB") or _sqlite_url(base / "trialforge.db"),
        ray_storage=os.environ.get("TRIALFORGE_RAY_STORAGE") or None,
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///` store URL; None for other stores and in-memory sqlite.

    Opening a sqlite store that is not there creates it: readers check this first.
    """
    database = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    return Path(database) if database and database != ":memory:" else None


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, fit to show on screen or in a log."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
