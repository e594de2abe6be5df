"""trialforge: hyperparameter sweeps for deep-learning model families.

One YAML spec describes the model family, the data and the search space; `run_sweep` runs it
with Ray Tune + Optuna (TPE, ASHA), trains every trial with the same epoch loop (in-process
or on a Ray Train TorchTrainer), tracks it in MLflow and registers the best model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trialforge.errors import NotFoundError, SpecError, SweepFailedError, TrialforgeError
from trialforge.home import Home, resolve_home
from trialforge.spec import SweepSpec, load_spec, parse_spec

if TYPE_CHECKING:
    from trialforge.registry import load_model
    from trialforge.search import SweepResult, resume_sweep, run_sweep

__version__ = "0.1.0"

# Ray, MLflow and torch load on first use, so `import trialforge` (and the CLI) stays quick.
_LAZY = {
    "run_sweep": "trialforge.search",
    "resume_sweep": "trialforge.search",
    "SweepResult": "trialforge.search",
    "load_model": "trialforge.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trialforge' has no attribute {name!r}")


__all__ = [
    "Home",
    "NotFoundError",
    "SpecError",
    "SweepFailedError",
    "SweepResult",
    "SweepSpec",
    "TrialforgeError",
    "load_model",
    "load_spec",
    "parse_spec",
    "resolve_home",
    "resume_sweep",
    "run_sweep",
]
