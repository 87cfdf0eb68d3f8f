"""Fit the churn model the honest way: out of time, against baselines, then refit for production.

1. Split the labelled points by date (models.splits): train, calibration, test.
2. On the same split: the base rate, an L1 logistic regression, and LightGBM early-stopped
   on the calibration slice and calibrated there. The test metrics are about these models.
3. The production model is LightGBM refit on every labelled point with the number of rounds
   chosen on the split; its calibrator is fitted on time-ordered out-of-fold predictions
   (each fold predicted by a model that saw only earlier, purged points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import baselines, calibration, lgbm, splits
from models.classifier import ChurnClassifier, FeatureContract

MODELS = ("base_rate", "l1_logistic", "hist_gradient_boosting", "lightgbm")  # those trained


@dataclass
class TrainResult:
    split_model: ChurnClassifier
    final_model: ChurnClassifier
    predictions: pd.DataFrame  # the test slice: keys, kind, label, truth, p_<model>
    summary: dict


def labelled_points(table: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame:
    keep = table["label"].notna() & table["kind"].isin(kinds)
    out = table.loc[keep].sort_values(["t", "customer_id"], kind="stable").reset_index(drop=True)
    out["label"] = out["label"].astype("int64")
    return out


def train(table: pd.DataFrame, contract: FeatureContract, *, seed: int, kinds: tuple[str, ...],
          test_days: int, calibration_days: int, method: calibration.Method, oof_folds: int,
          rounds: int, early_stopping: int, lgbm_params: dict, logistic_c: float,
          horizon_days: int, hgb_params: dict | None = None, log=print) -> TrainResult:
    # the peer's params are checked before anything is fitted
    peer = None if hgb_params is None else baselines.HistGradientBoosting(
        list(contract.categorical), hgb_params, seed)
    data = labelled_points(table, kinds)
    split = splits.by_time(data["t"], test_days=test_days, calibration_days=calibration_days,
                           horizon_days=horizon_days)
    feats, cat = list(contract.features), list(contract.categorical)
    numeric = [f for f in feats if f not in cat]
    x, y = data[feats], data["label"].to_numpy()
    tr, ca, te = split.train, split.cal, split.test
    log(f"split: train {len(tr):,} / calibration {len(ca):,} / test {len(te):,} points "
        f"({split.purged:,} purged); test from {split.boundaries.test_start}")

    base = baselines.BaseRate().fit(x.iloc[tr], y[tr])
    log("fitting L1 logistic regression")
    logit = baselines.l1_logistic(numeric, cat, c=logistic_c, seed=seed).fit(x.iloc[tr], y[tr])
    if peer is not None:
        log("fitting HistGradientBoosting (the peer; early stopping on the calibration slice)")
        peer.fit(x.iloc[tr], y[tr], valid=(x.iloc[ca], y[ca]))
        if peer.numeric_codes_:
            log(f"the peer takes {peer.numeric_codes_} as numbers: more categories than its "
                "max_bins")
    log("fitting LightGBM (early stopping on the calibration slice)")
    booster = lgbm.fit(x.iloc[tr], y[tr], categorical=cat, params=lgbm_params, rounds=rounds,
                       seed=seed, valid=(x.iloc[ca], y[ca]), early_stopping=early_stopping)
    best = booster.best_iteration or rounds
    booster = lgbm.truncate(booster, best)
    raw_cal = booster.predict(x.iloc[ca])
    calib = calibration.fit(raw_cal, y[ca], method)
    split_model = ChurnClassifier(booster, calib, contract)

    raw_test = booster.predict(x.iloc[te])
    predictions = data.iloc[te][["customer_id", "t", "kind", "label", "truth"]].reset_index(
        drop=True).assign(
        p_base_rate=base.predict_proba(x.iloc[te])[:, 1],
        p_l1_logistic=logit.predict_proba(x.iloc[te])[:, 1],
        p_lightgbm_raw=raw_test,
        p_lightgbm=calib(raw_test),
    )
    if peer is not None:
        predictions["p_hist_gradient_boosting"] = peer.predict_proba(x.iloc[te])[:, 1]

    log(f"production model: {oof_folds} time folds, each after the first predicted by a model "
        f"fitted on the ones before ({oof_folds - 1} out-of-fold fits) for its calibrator, then a "
        f"refit on all {len(data):,} labelled points ({best} rounds)")
    oof_raw, oof_y = [], []
    for fit_rows, pred_rows in splits.time_folds(data["t"], folds=oof_folds,
                                                 horizon_days=horizon_days):
        b = lgbm.fit(x.iloc[fit_rows], y[fit_rows], categorical=cat, params=lgbm_params,
                     rounds=best, seed=seed)
        oof_raw.append(b.predict(x.iloc[pred_rows]))
        oof_y.append(y[pred_rows])
    final_booster = lgbm.fit(x, y, categorical=cat, params=lgbm_params, rounds=best, seed=seed)
    final_calib = calibration.fit(np.concatenate(oof_raw), np.concatenate(oof_y), method)
    final = ChurnClassifier(final_booster, final_calib, contract)

    check, skipped = calibration.forward_check(raw_cal, y[ca], data["t"].iloc[ca].to_numpy())
    if skipped:
        log(f"calibration check skipped: {skipped}")

    def brier(p, yy):
        return float(np.mean((p - yy) ** 2))

    summary = {
        "boundaries": split.boundaries.as_dict(),
        "points": {"train": len(tr), "calibration": len(ca), "test": len(te),
                   "purged": split.purged, "all_labelled": len(data)},
        "churn_rate": {"train": float(y[tr].mean()), "calibration": float(y[ca].mean()),
                       "test": float(y[te].mean())},
        "best_iteration": int(best),
        "calibration": {"method": method,
                        "brier_raw_on_calibration": brier(raw_cal, y[ca]),
                        "brier_calibrated_on_calibration": brier(calib(raw_cal), y[ca]),
                        "oof_points": int(sum(len(r) for r in oof_raw)),
                        "forward_check": check, "forward_check_skipped": skipped},
        "logistic_nonzero_coefficients": int(np.count_nonzero(logit[-1].coef_)),
        "hist_gradient_boosting_iterations": None if peer is None else peer.best_iteration_,
    }
    return TrainResult(split_model, final, predictions, summary)
