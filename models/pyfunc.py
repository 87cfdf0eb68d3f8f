"""The MLflow face of the model: one pyfunc holding the whole ChurnClassifier."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc

from models.classifier import ChurnClassifier


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """predict() returns calibrated churn probabilities; `.model` reaches the booster
    (e.g. `mlflow.pyfunc.load_model(uri).unwrap_python_model().model.contributions(df)`)."""

    def load_context(self, context) -> None:
        self.model = ChurnClassifier.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input, params=None):
        return self.model.predict_proba(model_input)


def load(uri: str) -> ChurnClassifier:
    """The ChurnClassifier behind a model URI such as models:/churn@champion."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model
