"""MLflow models-from-code entry point (no pickled objects): the churn pyfunc."""

import mlflow

from models.pyfunc import ChurnPyfunc

mlflow.models.set_model(ChurnPyfunc())
