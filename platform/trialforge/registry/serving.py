"""The code MLflow runs to load a trialforge model's pyfunc (its "model from code")."""

import mlflow

from trialforge.registry.pyfunc import RawInputModel

mlflow.models.set_model(RawInputModel())
