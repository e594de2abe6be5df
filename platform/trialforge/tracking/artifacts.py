"""A trial's best checkpoint in its MLflow run, copied from Ray's storage."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pyarrow.fs
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from trialforge.figures import draw_figures
from trialforge.tracking.tags import BEST_CHECKPOINT_DIR

logger = logging.getLogger(__name__)


def upload_best_checkpoint(artifacts: ArtifactRepository, run_id: str, checkpoint: str) -> None:
    """The checkpoint file of `checkpoint` (a folder, or a URI on remote storage) under run
    `run_id`'s `best_checkpoint/` in `artifacts`, its figures drawn at the root."""
    with tempfile.TemporaryDirectory(prefix="trialforge-best-") as tmp:
        try:  # pyarrow reads a local folder and every storage Ray writes to alike
            pyarrow.fs.copy_files(checkpoint, tmp)
        except OSError:
            logger.warning("run %s: its best checkpoint %s is gone from Ray's storage",
                           run_id, checkpoint)
            return
        draw_figures(Path(tmp))
        for path in sorted(Path(tmp).iterdir()):
            if path.suffix in (".pt", ".png"):
                artifacts.log_artifact(  # type: ignore[no-untyped-call]
                    str(path), BEST_CHECKPOINT_DIR if path.suffix == ".pt" else None)
