"""What every trial's run records so it can be replayed exactly (`trialforge replay`): the
data's fingerprint, the code's version, the packages' versions, and the trial's own spec (its
knobs, seed and split seed), as MLflow tags."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trialforge.spec import DataConfig, SweepSpec

TAG_DATA = "trialforge.data_fingerprint"
TAG_CODE = "trialforge.code_version"
TAG_PACKAGES = "trialforge.packages"
TAG_TRIAL_SPEC = "trialforge.trial_spec"  # the trial's whole spec, JSON
PACKAGES = ("trialforge", "torch", "numpy", "pandas", "ray", "mlflow", "optuna")
_CHUNK = 2**20


def sweep_provenance(spec: SweepSpec) -> dict[str, str]:
    """The tags every trial of `spec`'s sweep shares (computed once, by the driver)."""
    return {TAG_DATA: data_fingerprint(spec.data), TAG_CODE: code_version(),
            TAG_PACKAGES: json.dumps(package_versions(), sort_keys=True)}


def data_fingerprint(config: DataConfig) -> str:
    """A hash of the data `config` reads: its files' paths and bytes, or for generated and
    bundled data what makes it (the file scikit-learn ships, the generator's arguments)."""
    digest = hashlib.sha256(config.dataset.encode())
    if config.path:
        root = Path(config.path)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(chunk)
    elif config.dataset == "digits":
        from trialforge.data.digits import digits_path

        digest.update(digits_path().read_bytes())
    elif config.dataset == "series":
        from trialforge.data.sequences import SERIES_LENGTH

        digest.update(f"generate_series(length={SERIES_LENGTH}, seed=0)".encode())
    return f"sha256:{digest.hexdigest()}"


def code_version() -> str:
    """trialforge's version, and its git commit when it runs from a checkout (`+dirty` with
    uncommitted changes)."""
    version = f"trialforge {importlib.metadata.version('trialforge')}"
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version  # an installed package: its version is all there is
    return f"{version} git {commit}{'+dirty' if dirty else ''}"


def package_versions() -> dict[str, str]:
    """The versions of the packages a trial's numbers depend on, and Python's."""
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found
