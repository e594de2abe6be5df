"""Where embedded state lives: one folder, `$TRIALFORGE_HOME` (default `./.trialforge`).

Standard variables override the pieces: `MLFLOW_TRACKING_URI` (MLflow's own), `TRIALFORGE_DB`
(any SQLAlchemy URL, also used for Optuna's studies), `TRIALFORGE_RAY_STORAGE` (Tune's
`storage_path`: a folder every node sees, or `s3://...`, on a cluster) and `RAY_ADDRESS`
(Ray's own).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from trialforge.errors import TrialforgeError

DEFAULT_HOME = ".trialforge"
STORES_LOCK = ".stores.lock"  # held while a process creates the sqlite stores


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
        """Create the folders; called only once a spec is valid, so bad input writes nothing.

        A home that cannot be a writable folder is a `TrialforgeError` naming it.
        """
        self.check()
        folders = [self.root, self.artifacts]
        if self.ray_storage is None:
            folders.append(self.root / "ray_results")
        for path in folders:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._unusable(f": cannot create {path} ({exc.strerror})") from None
            if not os.access(path, os.W_OK | os.X_OK):
                raise self._unusable(f": {path} is read-only")
        return self

    @contextlib.contextmanager
    def stores_lock(self) -> Iterator[None]:
        """Held by one process at a time (an exclusive lock on a file in the home): what
        creates a store another process might create too runs inside it."""
        import fcntl

        with open(self.root / STORES_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def check(self) -> None:
        """Raise `TrialforgeError` if the home is, or lies under, something not a folder."""
        for path in (self.root, *self.root.parents):
            if path.exists():
                if not path.is_dir():
                    where = "" if path == self.root else f" lies under {path}, which"
                    raise self._unusable(f"{where} is a file, not a folder")
                return

    def _unusable(self, reason: str) -> TrialforgeError:
        return TrialforgeError(f"trialforge home {self.root}{reason}; point --home or "
                               "TRIALFORGE_HOME at a folder you can write")


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
