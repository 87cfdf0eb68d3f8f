"""Honest baselines and a peer on the same split: the base rate, an L1 logistic regression, and
scikit-learn's histogram gradient boosting (a second tree ensemble, to tell LightGBM's own
quirks from what trees can find in the data)."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from common import exact
from common.errors import ConfigError


class BaseRate:
    """Everyone gets the training churn rate: the floor any model must clear."""

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> BaseRate:
        self.rate_ = float(np.mean(y))
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = np.full(len(x), self.rate_)
        return np.column_stack([1 - p, p])


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * exact.log1p(np.abs(x))  # not np.log1p: its kernel depends on the CPU


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


class PeerParamsError(ConfigError):
    """train.hist_gradient_boosting holds something the peer cannot take."""


RESERVED = ("categorical_features", "early_stopping", "random_state")  # set by the product


def check_peer_params(params: dict, key: str = "hist_gradient_boosting") -> None:
    """PeerParamsError unless sklearn's HistGradientBoostingClassifier takes `params`: names
    (with the closest argument for a typo), then each value against sklearn's own parameter
    constraints (type and range). Cheap: nothing is fitted."""
    allowed = set(HistGradientBoostingClassifier().get_params()) - set(RESERVED)
    bad = sorted(set(params) - allowed)
    if bad:
        close = [m for b in bad for m in difflib.get_close_matches(b, sorted(allowed), n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise PeerParamsError(
            key, f"{bad} cannot be set; {', '.join(RESERVED)} are the product's, the rest "
            f"must be arguments of sklearn's HistGradientBoostingClassifier{hint}")
    for name, value in params.items():
        try:
            HistGradientBoostingClassifier(**{name: value})._validate_params()
        except InvalidParameterError as err:
            said = re.search(r"must be (.*)\. Got", str(err))
            raise PeerParamsError(f"{key}.{name}", f"must be {said.group(1)}, got {value!r}"
                                  if said else str(err)) from None


class HistGradientBoosting:
    """Early-stopped on the calibration slice like LightGBM (not on a random split, which would
    leak the future): fit the full number of iterations once, keep the stage with the lowest
    log loss on the slice."""

    def __init__(self, categorical: list[str], params: dict, seed: int) -> None:
        check_peer_params(params)
        self.categorical, self.params, self.seed = categorical, params, seed

    def _x(self, x: pd.DataFrame) -> pd.DataFrame:
        # category codes: -1 (unknown) becomes missing, the rest stay small non-negative ints
        return x.assign(**{c: x[c].where(x[c] >= 0).astype("float64") for c in self.categorical})

    def fit(self, x: pd.DataFrame, y: np.ndarray, valid: tuple[pd.DataFrame, np.ndarray]
            ) -> HistGradientBoosting:
        # sklearn takes at most max_bins categories per feature: beyond that, the codes are
        # used as plain numbers (LightGBM still treats them as categories)
        limit = self.params.get("max_bins", 255)
        self.numeric_codes_ = [c for c in self.categorical if x[c].nunique() > limit]
        cat = [c in self.categorical and c not in self.numeric_codes_ for c in x.columns]
        self.model_ = HistGradientBoostingClassifier(
            **self.params, categorical_features=cat, early_stopping=False,
            random_state=self.seed).fit(self._x(x), y)
        xv, yv = self._x(valid[0]), np.asarray(valid[1], dtype=np.float64)
        losses = [float(-np.mean(yv * np.log(np.clip(p[:, 1], 1e-15, 1))
                                 + (1 - yv) * np.log(np.clip(p[:, 0], 1e-15, 1))))
                  for p in self.model_.staged_predict_proba(xv)]
        self.best_iteration_ = int(np.argmin(losses)) + 1
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        # the stages up to the best one (`model_` itself holds every iteration fitted)
        for i, p in enumerate(self.model_.staged_predict_proba(self._x(x)), start=1):
            if i == self.best_iteration_:
                return p
        raise AssertionError("unreachable: best_iteration_ is at most the iterations fitted")
