"""LightGBM on the feature table: seeded, deterministic, early-stopped on the calibration slice."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
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


# set by the product, never by train.lgbm (each with the setting that decides it)
PRODUCT_SET = {
    "seed": "train.seed",
    "num_iterations": "train.rounds",
    "early_stopping_round": "train.early_stopping",
    "deterministic": "the product (always true, for repeatable fits)",
    "force_row_wise": "the product (always true, for repeatable fits)",
    "verbosity": "the product",
    "categorical_feature": "the feature contract",
}


def _aliases() -> dict[str, list[str]]:
    """LightGBM's own parameter names: main name -> [main name, *aliases] (its C API)."""
    from lightgbm.basic import _ConfigAliases

    return _ConfigAliases._get_all_param_aliases()


@contextlib.contextmanager
def _no_stderr():
    """LightGBM's C++ side writes its [Fatal] line straight to file descriptor 2."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _lightgbm_says(params: dict[str, Any]) -> str | None:
    """LightGBM's own complaint about `params` (None if it takes them): a booster is created
    on a four-row dataset, which parses and range-checks every parameter like a real fit."""
    x, y = np.arange(8.0).reshape(4, 2), np.array([0.0, 1.0, 0.0, 1.0])
    p = {"objective": "binary", **params, "verbosity": -1}
    try:
        with _no_stderr():
            lgb.Booster(p, lgb.Dataset(x, label=y, params=p))
    except lgb.basic.LightGBMError as err:
        return str(err).strip()
    return None


def _explain(message: str, value: Any) -> str:
    if m := re.search(r"should be of type (\w+)", message):
        kind = {"int": "an integer", "double": "a number"}.get(m.group(1), m.group(1))
        return f"expected {kind}, got {value!r}"
    if message.startswith("Unknown token"):  # how LightGBM says a double did not parse
        return f"expected a number, got {value!r}"
    if '"true"/"+" or "false"/"-"' in message:
        return f"expected true or false, got {value!r}"
    if m := re.match(r"Check failed: \((.+?)\) (\S+) \((.+?)\)", message):
        return f"must be {m.group(2)} {m.group(3)}, got {value!r}"
    return f"LightGBM rejects {value!r}: {message.splitlines()[0]}"


def check_params(params: Mapping[str, Any], key: str = "lgbm") -> None:
    """ConfigError naming the first setting of `params` (train.lgbm) LightGBM would not take:
    an unknown name (with the closest LightGBM name), one the product sets itself, or a value
    of the wrong type or range. Runs when params.yaml is read, before anything is fitted."""
    from common.errors import ConfigError

    aliases = _aliases()
    main_of = {a: main for main, names in aliases.items() for a in names}
    for name, value in params.items():
        if name not in main_of:
            close = difflib.get_close_matches(name, list(main_of), n=1)
            hint = (f"did you mean {close[0]}?" if close else
                    "see https://lightgbm.readthedocs.io/en/latest/Parameters.html")
            raise ConfigError(f"{key}.{name}", f"not a LightGBM parameter; {hint}")
        if main_of[name] in PRODUCT_SET:
            raise ConfigError(f"{key}.{name}",
                              f"is set by {PRODUCT_SET[main_of[name]]}; remove it from {key}")
        complaint = _lightgbm_says({name: value})
        if complaint:
            raise ConfigError(f"{key}.{name}", _explain(complaint, value))
    complaint = _lightgbm_says(dict(params))  # together (e.g. an objective and its options)
    if complaint:
        raise ConfigError(key, f"LightGBM rejects these settings: {complaint.splitlines()[0]}")
