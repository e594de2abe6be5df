"""MLflow Model Registry: versions and aliases of the models sweeps produce."""

from trialforge.registry.versions import RegisteredVersion, load_model, register_best_model

__all__ = ["RegisteredVersion", "load_model", "register_best_model"]
