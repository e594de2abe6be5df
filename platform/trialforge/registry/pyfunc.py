"""A registered model's MLflow pyfunc: raw input in, answers out.

Saved as MLflow's "model from code" (`serving.py`, a file that names this class), so nothing
is pickled: the weights load with `weights_only=True` and the rest is the JSON the model was
registered with (`model_config`). `mlflow models predict` / `serve` and `mlflow.pyfunc`
take a DataFrame of the raw input the data was made of (a table's columns by name, an
`image` of bytes or a path, `text`, or named numbers) and return labels with their
probabilities (a regression: its prediction).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from mlflow.pyfunc.model import PythonModel

from trialforge.data.preprocessing import Preprocessing


class RawInputModel(PythonModel):
    """The champion with its preprocessing, as MLflow serves it."""

    def load_context(self, context: Any) -> None:
        from trialforge.registry.versions import rebuild_model

        config = context.model_config
        weights = torch.load(context.artifacts["state_dict"], map_location="cpu",
                             weights_only=True)
        self.preprocessing = Preprocessing.model_validate(config["preprocessing"])
        self.module = rebuild_model(config, weights)

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        with torch.no_grad():
            output = self.module(self.preprocessing.transform(model_input))
        return self.preprocessing.answers(output)
