"""The MLflow face of the model: one pyfunc holding the whole ChurnClassifier."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.classifier import ChurnClassifier


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """predict() returns calibrated churn probabilities; `.model` reaches the booster
    (e.g. `mlflow.pyfunc.load_model(uri).unwrap_python_model().model.contributions(df)`)."""

    def load_context(self, context) -> None:
        self.model = ChurnClassifier.load(Path(context.artifacts["model"]))

    # a DataFrame hint: MLflow validates against the logged signature, and stops asking for hints
    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(model_input)


def load(uri: str) -> ChurnClassifier:
    """The ChurnClassifier behind a model URI such as models:/churn@champion."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model
