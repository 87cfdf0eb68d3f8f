"""models.training.train called directly: data it cannot learn from stops with a UserError that
says what is wrong and what to change; features without information are left out of the
baselines (not a crash) and named on the result; the summary is typed, its JSON unchanged."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from common.errors import UserError
from models.classifier import FeatureContract
from models.config import TrainConfig
from models.training import TrainingDataError, TrainResult, train

FEATURES = ("usage", "tickets", "plan_code", "nps_last", "nps_band")
CATEGORICAL = ("plan_code", "nps_band")
CONTRACT = FeatureContract(
    features=FEATURES,
    dtypes={"usage": "float64", "tickets": "float64", "plan_code": "int64",
            "nps_last": "float64", "nps_band": "int64"},
    categorical=CATEGORICAL, vocab={"plan_code": ["a", "b", "c"], "nps_band": ["0", "1", "2", "3"]},
    families={f: "usage" for f in FEATURES})
QUICK = TrainConfig(
    seed=1, kinds=("young", "ongoing"), test_days=60, calibration_days=90,
    calibration="sigmoid", oof_folds=2, rounds=20, early_stopping=5,
    lgbm={"num_leaves": 3, "min_data_in_leaf": 20, "num_threads": 1}, logistic_c=0.5,
    hist_gradient_boosting={"max_iter": 20})
HORIZON = 30


def _table(customers: int = 120, weeks: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=7 * w) for w in range(weeks)]
    n = customers * weeks
    usage = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(-1.5 - usage)))
    return pd.DataFrame({
        "customer_id": np.repeat(np.arange(customers), weeks),
        "t": np.tile(np.array(dates, dtype=object), customers),
        "kind": "ongoing",
        "label": (rng.random(n) < p).astype("float64"),
        "truth": p,
        "usage": usage,
        "tickets": rng.poisson(1.0, n).astype("float64"),
        "plan_code": rng.integers(0, 3, n).astype("int64"),
        "nps_last": rng.integers(0, 11, n).astype("float64"),
        "nps_band": rng.integers(0, 4, n).astype("int64"),
    })


def _quiet(table, config=QUICK) -> TrainResult:
    return train(table, CONTRACT, config, horizon_days=HORIZON, log=lambda m: None)


def test_no_churn_says_so_before_fitting():
    table = _table().assign(label=0.0)
    with pytest.raises(TrainingDataError, match=r"no churn among the 7,200 labelled points "
                                                r"\(120 customers\).*longer history"):
        _quiet(table)


def test_a_slice_without_churn_names_the_slice_sizes_and_params():
    table = _table()
    late = pd.to_datetime(table["t"]) >= "2024-11-01"  # nobody churns in the newest months
    table.loc[late, "label"] = 0.0
    with pytest.raises(TrainingDataError) as err:
        _quiet(table)
    msg = str(err.value)
    assert msg.startswith("the test slice has no churn among its ")
    assert "slices: train " in msg and " / calibration " in msg and " / test " in msg
    for param in ("train.test_days (60)", "train.calibration_days (90)",
                  "labels.horizon_days (30)", "export a longer history"):
        assert param in msg


def test_one_customer_or_few_points_is_a_user_error_not_a_traceback():
    one = _table()
    one = one[one["customer_id"] == 0]
    with pytest.raises(TrainingDataError, match=r"the \w+ slice has \d+ churner\(s\) and \d+ "
                                                r"stayer\(s\) \(at least 10 of each needed\)"):
        _quiet(one)
    few = _table(customers=3, weeks=20)
    with pytest.raises(UserError, match="test_days"):  # models.splits.SplitError
        _quiet(few)
    with pytest.raises(TrainingDataError, match="no labelled observation points"):
        _quiet(_table().assign(label=np.nan))


def test_features_without_information_are_left_out_of_the_baselines():
    """An export without the NPS table: nps_last missing everywhere, nps_band 0 everywhere.
    sklearn's HistGradientBoosting crashed on the all-missing column ("window shape cannot be
    larger than input array shape"); now every model trains and the result names them."""
    table = _table().assign(nps_last=np.nan, nps_band=0)
    r = _quiet(table)
    assert r.uninformative == ("nps_last", "nps_band")
    for col in ("p_base_rate", "p_l1_logistic", "p_hist_gradient_boosting", "p_lightgbm"):
        assert r.predictions[col].between(0, 1).all(), col
    assert r.summary.hist_gradient_boosting_iterations >= 1
    assert "uninformative" not in json.dumps(r.summary.to_dict())
    full = _quiet(_table())
    assert full.uninformative == ()


def test_summary_by_attribute_and_as_the_old_dict():
    r = _quiet(_table())
    s = r.summary
    d = s.to_dict()
    assert set(d) == {"boundaries", "points", "churn_rate", "best_iteration", "calibration",
                      "logistic_nonzero_coefficients", "hist_gradient_boosting_iterations"}
    assert d["boundaries"] == {"last": str(s.boundaries.last),
                               "cal_start": str(s.boundaries.cal_start),
                               "test_start": str(s.boundaries.test_start)}
    assert d["points"] == {"train": s.points.train, "calibration": s.points.calibration,
                           "test": s.points.test, "purged": s.points.purged,
                           "all_labelled": s.points.all_labelled}
    assert set(d["churn_rate"]) == {"train", "calibration", "test"}
    assert set(d["calibration"]) == {"method", "brier_raw_on_calibration",
                                     "brier_calibrated_on_calibration", "oof_points",
                                     "forward_check", "forward_check_skipped", "level",
                                     "test_sharpness"}
    assert d["calibration"]["method"] == s.calibration.method == "sigmoid"
    # the bands' two uncertainties ride in the production model's calibrator: the level's
    # standard error from the windows, the sharpness's from the split model's test slice
    sharp = d["calibration"]["test_sharpness"]
    assert set(sharp) == {"slope", "se", "sd"} and 0 < sharp["se"] < 1
    assert sharp["sd"] == pytest.approx(
        np.sqrt(max(0.0, (sharp["slope"] - 1) ** 2 - sharp["se"] ** 2)), rel=1e-6)
    assert r.final_model.calibrator.slope_sd == sharp["sd"]
    assert r.final_model.calibrator.shift_sd == d["calibration"]["level"]["sd"] > 0
    # the level candidates (models.level), the one train.level names applied to the model
    level = d["calibration"]["level"]
    assert set(level["candidates"]) == {"none", "recent", "trend", "blend"}
    assert level["method"] == QUICK.level and level["shift"] == level["candidates"][QUICK.level]
    assert r.final_model.calibrator.shift == level["shift"]
    assert d["best_iteration"] == s.best_iteration and isinstance(s.best_iteration, int)
    assert json.loads(json.dumps(d, sort_keys=True, default=str)) == d
    no_peer = _quiet(_table(), dataclasses.replace(QUICK, hist_gradient_boosting=None))
    assert no_peer.summary.hist_gradient_boosting_iterations is None
    assert "p_hist_gradient_boosting" not in no_peer.predictions


def test_an_export_without_nps_trains_every_model(built):
    """The 4,000-customer world's features with the NPS family as an export without the
    survey table leaves it: missing or 0 for every point."""
    from features.catalogue import FAMILY
    from features.config import LabelConfig
    from pipeline import io

    meta = io.read_json(built.feature_meta)
    table = pd.read_parquet(built.features_table)
    nps = [f for f, family in FAMILY.items() if family == "nps"]
    for f in nps:
        table[f] = np.nan if table[f].dtype.kind == "f" else 0
    contract = _contract_of(meta)
    config = dataclasses.replace(QUICK, kinds=("young", "early_life", "ongoing"), test_days=120,
                                 calibration_days=120, lgbm={"num_threads": 2})
    assert LabelConfig  # the labels section lives in features.config
    r = train(table, contract, config, horizon_days=contract.label["horizon_days"],
              log=lambda m: None)
    assert set(r.uninformative) == set(nps)
    assert r.predictions["p_hist_gradient_boosting"].between(0, 1).all()
    assert r.summary.points.test > 2000


def _contract_of(meta: dict) -> FeatureContract:
    from features.catalogue import CATEGORICAL as CAT
    from features.catalogue import FAMILY
    from features.catalogue import FEATURES as FEATS

    return FeatureContract(
        features=FEATS, dtypes=dict(meta["dtypes"]), categorical=CAT,
        vocab={k: list(v) for k, v in meta["vocab"].items()}, families=dict(FAMILY),
        label={"horizon_days": 60})
