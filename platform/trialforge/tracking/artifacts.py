"""A trial's best checkpoint in its MLflow run, copied from Ray's storage."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from trialforge.tracking.tags import BEST_CHECKPOINT_DIR

logger = logging.getLogger(__name__)


def upload_best_checkpoint(client: MlflowClient, run_id: str, checkpoint: str) -> None:
    """The checkpoint file of `checkpoint` (a folder, or a URI on remote storage) under the
    run's `best_checkpoint/`, the images beside it at the run's root."""
    with tempfile.TemporaryDirectory(prefix="trialforge-best-") as tmp:
        folder = _local_folder(checkpoint, Path(tmp))
        if folder is None:
            logger.warning("run %s: its best checkpoint %s is gone from Ray's storage",
                           run_id, checkpoint)
            return
        for path in sorted(folder.iterdir()):
            if path.suffix == ".pt":
                client.log_artifact(run_id, str(path), BEST_CHECKPOINT_DIR)
            elif path.suffix == ".png":
                client.log_artifact(run_id, str(path))


def _local_folder(checkpoint: str, scratch: Path) -> Path | None:
    """The checkpoint folder on this machine: itself, or a copy of remote storage's."""
    if "://" not in checkpoint:
        folder = Path(checkpoint)
        return folder if folder.is_dir() else None
    import pyarrow.fs

    try:
        pyarrow.fs.copy_files(checkpoint, str(scratch))
    except (OSError, FileNotFoundError):
        return None
    return scratch if any(scratch.iterdir()) else None
