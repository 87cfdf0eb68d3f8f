"""LightGBM on the feature table: seeded, deterministic, early-stopped on the calibration slice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

# settings that make a fit repeatable bit for bit; the user's params can add, not remove them
DETERMINISTIC = {"deterministic": True, "force_row_wise": True, "verbosity": -1}


def booster_params(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """What `lightgbm.train` gets: the params.yaml section, made deterministic and seeded."""
    return {"objective": "binary", **params, **DETERMINISTIC, "seed": seed}


def dataset(x: pd.DataFrame, y: np.ndarray | None, categorical: list[str],
            reference: lgb.Dataset | None = None) -> lgb.Dataset:
    return lgb.Dataset(x, label=y, categorical_feature=categorical, reference=reference,
                       free_raw_data=False)


def fit(x: pd.DataFrame, y: np.ndarray, *, categorical: list[str], params: Mapping[str, Any],
        rounds: int, seed: int, valid: tuple[pd.DataFrame, np.ndarray] | None = None,
        early_stopping: int = 0) -> lgb.Booster:
    """Fit; with `valid`, stop when its log loss has not improved for `early_stopping` rounds."""
    train = dataset(x, y, categorical)
    callbacks, valid_sets = [], []
    if valid is not None:
        valid_sets = [dataset(valid[0], valid[1], categorical, reference=train)]
        if early_stopping:
            callbacks.append(lgb.early_stopping(early_stopping, verbose=False))
    p = booster_params(params, seed)
    p.setdefault("metric", "binary_logloss")
    booster = lgb.train(p, train, num_boost_round=rounds, valid_sets=valid_sets,
                        callbacks=callbacks)
    return booster


def truncate(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """The same model with only its first `rounds` trees (what early stopping chose)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
