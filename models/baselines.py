"""Honest baselines on the same split: the base rate, and an L1 logistic regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


class BaseRate:
    """Everyone gets the training churn rate: the floor any model must clear."""

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> BaseRate:
        self.rate_ = float(np.mean(y))
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = np.full(len(x), self.rate_)
        return np.column_stack([1 - p, p])


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def l1_logistic(numeric: list[str], categorical: list[str], *, c: float, seed: int) -> Pipeline:
    """log1p and standardisation are fitted inside the training slice (a Pipeline), never on
    the rows it is judged on."""
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        FunctionTransformer(_signed_log1p, feature_names_out="one-to-one"),
        StandardScaler(),
    )
    prep = ColumnTransformer([
        ("num", numeric_steps, numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])
    lr = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=c, random_state=seed,
                            max_iter=500)
    return Pipeline([("prep", prep), ("lr", lr)])
