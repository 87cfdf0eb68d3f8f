"""The train and evaluate sections: range checks and LightGBM's / sklearn's own parameter
checks, as ConfigErrors naming the key, before anything is fitted."""

from __future__ import annotations

import dataclasses

import pytest

from common.errors import ConfigError, UserError
from models import baselines, splits
from models.config import EvaluateConfig, TrainConfig

GOOD = TrainConfig(
    seed=7, kinds=("young", "early_life", "ongoing"), test_days=120, calibration_days=120,
    calibration="sigmoid", oof_folds=4, rounds=3000, early_stopping=100,
    lgbm={"learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 200,
          "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
          "lambda_l2": 5.0, "num_threads": 2},
    logistic_c=0.05,
    hist_gradient_boosting={"learning_rate": 0.05, "max_iter": 400, "max_leaf_nodes": 7,
                            "min_samples_leaf": 200, "l2_regularization": 5.0})


def _bad(key: str, match: str, **changes) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        dataclasses.replace(GOOD, **changes)
    assert err.value.key == key, str(err.value)


@pytest.mark.parametrize(("key", "match", "changes"), [
    ("seed", "between 0 and", {"seed": -1}),
    ("kinds", "one or more of", {"kinds": ()}),
    ("kinds", r"\['churned'\] are not point kinds", {"kinds": ("young", "churned")}),
    ("kinds", "twice", {"kinds": ("young", "young")}),
    ("test_days", "at least 1 day, not 0", {"test_days": 0}),
    ("calibration_days", "at least 1 day", {"calibration_days": 0}),
    ("calibration", "isotonic or sigmoid", {"calibration": "platt"}),
    ("oof_folds", "at least 2", {"oof_folds": 1}),
    ("rounds", "at least 1", {"rounds": 0}),
    ("early_stopping", "at least 1", {"early_stopping": 0}),
    ("logistic_c", "above 0", {"logistic_c": 0.0}),
])
def test_train_ranges_name_the_key(key, match, changes):
    _bad(key, match, **changes)


def test_lightgbm_typo_names_the_key_and_the_close_match():
    lgbm = {k: v for k, v in GOOD.lgbm.items() if k != "num_leaves"} | {"num_leavs": 7}
    _bad("lgbm.num_leavs", "not a LightGBM parameter; did you mean num_leaves\\?", lgbm=lgbm)


@pytest.mark.parametrize(("name", "value", "match"), [
    ("learning_rate", "fast", "expected a number, got 'fast'"),
    ("num_leaves", 7.5, "expected an integer, got 7.5"),
    ("bagging_freq", True, "expected an integer, got True"),
    ("num_leaves", 1, "must be > 1, got 1"),
    ("objective", "nonsense", "Unknown objective type name"),
    ("seed", 3, "is set by train.seed"),
    ("random_state", 3, "is set by train.seed"),  # an alias of seed
    ("num_boost_round", 10, "is set by train.rounds"),
])
def test_lightgbm_values_are_checked_by_lightgbm(name, value, match, capfd):
    _bad(f"lgbm.{name}", match, lgbm=GOOD.lgbm | {name: value})
    assert "Fatal" not in capfd.readouterr().err  # LightGBM's own line is kept off stderr


def test_lightgbm_aliases_are_accepted():
    dataclasses.replace(GOOD, lgbm={"eta": 0.1, "num_leaf": 7, "reg_lambda": 1.0})


def test_peer_params_are_checked_at_load():
    with pytest.raises(baselines.PeerParamsError, match="did you mean max_leaf_nodes") as err:
        dataclasses.replace(GOOD, hist_gradient_boosting={"max_leaf_nods": 7})
    assert err.value.key == "hist_gradient_boosting"
    with pytest.raises(baselines.PeerParamsError, match=r"float in the range \(0.0, inf\), "
                                                        "got 'fast'") as err:
        dataclasses.replace(GOOD, hist_gradient_boosting={"learning_rate": "fast"})
    assert err.value.key == "hist_gradient_boosting.learning_rate"
    assert dataclasses.replace(GOOD, hist_gradient_boosting=None).hist_gradient_boosting is None


@pytest.mark.parametrize(("key", "changes"), [
    ("resamples", {"resamples": -1}), ("seed", {"seed": -3}),
    ("shap_sample", {"shap_sample": 0}), ("top_features", {"top_features": 0}),
])
def test_evaluate_ranges_name_the_key(key, changes):
    good = EvaluateConfig(resamples=200, seed=11, shap_sample=3000, top_features=6)
    assert dataclasses.replace(good, resamples=0).resamples == 0  # no intervals is allowed
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(good, **changes)
    assert err.value.key == key


def test_user_errors_share_the_base():
    assert issubclass(splits.SplitError, UserError)
    assert issubclass(baselines.PeerParamsError, UserError)
    from models.training import TrainingDataError

    assert issubclass(TrainingDataError, UserError)
