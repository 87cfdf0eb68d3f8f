"""Fit the churn model the honest way: out of time, against baselines, then refit for production.

1. Split the labelled points by date (models.splits): train, calibration, test. Each slice
   must hold both churners and stayers, or training stops with a TrainingDataError.
2. On the same split: the base rate, an L1 logistic regression, and LightGBM early-stopped
   on the calibration slice and calibrated there. The test metrics are about these models.
   Features with a single value on the training slice (e.g. NPS when the export has no
   survey table) are left out of the logistic regression and the peer; LightGBM ignores them.
3. The production model is LightGBM refit on every labelled point with the number of rounds
   chosen on the split; its calibrator is fitted on time-ordered out-of-fold predictions
   (each fold predicted by a model that saw only earlier, purged points).

What is written comes out the same on every machine (dvc.lock is reproduced elsewhere): the
logistic regression runs on one BLAS thread, and the test predictions and the summary's floats
are rounded to 9 significant digits (simulator/exact.py says why); LightGBM is deterministic
(models/lgbm.py) and the calibrator fits without BLAS (models/calibration.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from common.errors import UserError
from common.exact import round_floats, round_sig
from models import baselines, calibration, level, lgbm, splits
from models.classifier import ChurnClassifier, FeatureContract
from models.config import TrainConfig

MODELS = ("base_rate", "l1_logistic", "hist_gradient_boosting", "lightgbm")  # those trained


class TrainingDataError(UserError):
    """The labelled points cannot train and test a classifier: none, too few, or one class."""


@dataclass(frozen=True)
class SlicePoints:
    train: int
    calibration: int
    test: int
    purged: int
    all_labelled: int


@dataclass(frozen=True)
class ChurnRates:
    train: float
    calibration: float
    test: float


@dataclass(frozen=True)
class CalibrationSummary:
    method: str
    brier_raw_on_calibration: float
    brier_calibrated_on_calibration: float
    oof_points: int
    forward_check: dict[str, dict[str, float]]  # scores ("raw", methods) -> metric -> value
    forward_check_skipped: str  # why the check was skipped; "" when it ran
    level: dict = field(default_factory=dict)  # models.level: every candidate
    # models.calibration.sharpness of the split model on the test slice
    test_sharpness: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSummary:
    """What train_summary.json (and metrics.json's "split") holds, by attribute."""

    boundaries: splits.Boundaries
    points: SlicePoints
    churn_rate: ChurnRates
    best_iteration: int
    calibration: CalibrationSummary
    logistic_nonzero_coefficients: int
    hist_gradient_boosting_iterations: int | None

    def to_dict(self) -> dict:
        """The JSON form (train_summary.json): nested dicts, dates as ISO strings, floats to 9
        significant digits."""
        return round_floats({
            "boundaries": self.boundaries.as_dict(),
            "points": asdict(self.points),
            "churn_rate": asdict(self.churn_rate),
            "best_iteration": self.best_iteration,
            "calibration": asdict(self.calibration),
            "logistic_nonzero_coefficients": self.logistic_nonzero_coefficients,
            "hist_gradient_boosting_iterations": self.hist_gradient_boosting_iterations,
        })


@dataclass
class TrainResult:
    split_model: ChurnClassifier
    final_model: ChurnClassifier
    predictions: pd.DataFrame  # the test slice: keys, kind, label, truth, p_<model>
    summary: TrainSummary
    # features with one value (or missing) on every training point: left out of the logistic
    # regression and the peer. Not in the summary, whose JSON must not change with it.
    uninformative: tuple[str, ...] = field(default_factory=tuple)


def labelled_points(table: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame:
    keep = table["label"].notna() & table["kind"].isin(kinds)
    out = table.loc[keep].sort_values(["t", "customer_id"], kind="stable").reset_index(drop=True)
    out["label"] = out["label"].astype("int64")
    return out


def uninformative(x: pd.DataFrame) -> list[str]:
    """Columns with a single value on these rows, counting missing as a value: nothing to
    learn from, and an all-missing column crashes sklearn's HistGradientBoosting binner."""
    return [c for c in x.columns if x[c].nunique(dropna=False) <= 1]


def _fix(config: TrainConfig, horizon_days: int) -> str:
    return (f"change train.test_days ({config.test_days}), train.calibration_days "
            f"({config.calibration_days}) or labels.horizon_days ({horizon_days}), or export "
            "a longer history")


MIN_EACH = 10  # churners and stayers each slice needs at least (fewer: nothing to learn or test)


def _classes(y: np.ndarray, least: int = 1) -> str:
    """'' if `y` holds at least `least` of each label, else what it lacks."""
    churned, stayed = int(y.sum()), int(len(y) - y.sum())
    if churned == 0 or stayed == 0:
        return "no churn" if churned == 0 else "only churn"
    if min(churned, stayed) < least:
        return f"{churned:,} churner(s) and {stayed:,} stayer(s) (at least {least} of each needed)"
    return ""


def check_data(data: pd.DataFrame, split: splits.Split | None, config: TrainConfig,
               horizon_days: int) -> None:
    """TrainingDataError unless the labelled points (and, given, each slice) hold both
    churners and stayers: what is wrong with the data and which params to change."""
    y, n = data["label"].to_numpy(), len(data)
    if n == 0:
        raise TrainingDataError(
            f"the export has no labelled observation points of kinds {list(config.kinds)}: a "
            f"point is labelled once labels.horizon_days ({horizon_days}) have passed after it; "
            "export a longer history, shorten labels.horizon_days or widen train.kinds")
    lacks = _classes(y)
    if lacks:
        raise TrainingDataError(
            f"{lacks} among the {n:,} labelled points ({data['customer_id'].nunique():,} "
            "customers): a churn model needs churners and stayers; export a longer history "
            "or more customers (or check that the export's subscription periods end)")
    if split is None:
        return
    slices = (("train", split.train), ("calibration", split.cal), ("test", split.test))
    sizes = " / ".join(f"{name} {len(rows):,}" for name, rows in slices)
    for name, rows in slices:
        lacks = _classes(y[rows], MIN_EACH)
        if lacks:
            days = pd.to_datetime(data["t"].iloc[rows])
            raise TrainingDataError(
                f"the {name} slice has {lacks} among its {len(rows):,} labelled points "
                f"({days.min().date()}..{days.max().date()}; slices: {sizes}, "
                f"{split.purged:,} purged, of {n:,}); each slice needs churners and stayers: "
                f"{_fix(config, horizon_days)}")


def scoring_day(table: pd.DataFrame, data: pd.DataFrame, horizon_days: int) -> np.datetime64:
    """The day the production model scores first: the export's (its scoring points' day), else
    the day the newest label's window closes."""
    scoring = table.loc[table["kind"] == "scoring", "t"] if "kind" in table else pd.Series([])
    if len(scoring):
        return np.datetime64(pd.Timestamp(scoring.max()).date(), "D")
    return np.datetime64(pd.Timestamp(data["t"].max()).date(), "D") + np.timedelta64(
        horizon_days, "D")


def train(table: pd.DataFrame, contract: FeatureContract, config: TrainConfig, *,
          horizon_days: int, log=print) -> TrainResult:
    c = config
    data = labelled_points(table, c.kinds)
    check_data(data, None, c, horizon_days)
    split = splits.by_time(data["t"], test_days=c.test_days, calibration_days=c.calibration_days,
                           horizon_days=horizon_days)
    check_data(data, split, c, horizon_days)
    folds = splits.time_folds(data["t"], folds=c.oof_folds, horizon_days=horizon_days)
    oof_y = [data["label"].to_numpy()[pred_rows] for _, pred_rows in folds]
    if not folds or _classes(np.concatenate(oof_y)):
        raise TrainingDataError(
            f"the production model's calibrator has {len(folds)} out-of-fold fold(s) with "
            f"{sum(len(v) for v in oof_y):,} points and needs churners and stayers among them: "
            f"lower train.oof_folds ({c.oof_folds}), shorten labels.horizon_days "
            f"({horizon_days}) or export a longer history")
    feats, cat = list(contract.features), list(contract.categorical)
    x, y = data[feats], data["label"].to_numpy()
    tr, ca, te = split.train, split.cal, split.test
    log(f"split: train {len(tr):,} / calibration {len(ca):,} / test {len(te):,} points "
        f"({split.purged:,} purged); test from {split.boundaries.test_start}")

    # the baselines learn only from features that vary on the training slice
    dropped = uninformative(x.iloc[tr])
    used = [f for f in feats if f not in dropped]
    if not used:
        raise TrainingDataError(
            f"no feature varies over the {len(tr):,} training points: every one has a single "
            f"value or is missing; {_fix(c, horizon_days)}")
    xb = x if not dropped else x[used]
    cat_b = [f for f in cat if f in used]
    numeric_b = [f for f in used if f not in cat]
    if dropped:
        log(f"{len(dropped)} feature(s) have one value (or none) on every training point, left "
            f"out of the logistic regression and the peer: {', '.join(dropped)}")
    peer = None if c.hist_gradient_boosting is None else baselines.HistGradientBoosting(
        cat_b, c.hist_gradient_boosting, c.seed)

    base = baselines.BaseRate().fit(x.iloc[tr], y[tr])
    log("fitting L1 logistic regression")
    with threadpool_limits(1, "blas"):  # a BLAS's threads may split its sums differently
        logit = baselines.l1_logistic(numeric_b, cat_b, c=c.logistic_c, seed=c.seed).fit(
            xb.iloc[tr], y[tr])
        p_logit = logit.predict_proba(xb.iloc[te])[:, 1]
    if peer is not None:
        log("fitting HistGradientBoosting (the peer; early stopping on the calibration slice)")
        peer.fit(xb.iloc[tr], y[tr], valid=(xb.iloc[ca], y[ca]))
        if peer.numeric_codes_:
            log(f"the peer takes {peer.numeric_codes_} as numbers: more categories than its "
                "max_bins")
    log("fitting LightGBM (early stopping on the calibration slice)")
    booster = lgbm.fit(x.iloc[tr], y[tr], categorical=cat, params=c.lgbm, rounds=c.rounds,
                       seed=c.seed, valid=(x.iloc[ca], y[ca]), early_stopping=c.early_stopping)
    best = booster.best_iteration or c.rounds
    booster = lgbm.truncate(booster, best)
    raw_cal = booster.predict(x.iloc[ca])
    calib = calibration.fit(raw_cal, y[ca], c.calibration)
    split_model = ChurnClassifier(booster, calib, contract)

    raw_test = booster.predict(x.iloc[te])
    predictions = data.iloc[te][["customer_id", "t", "kind", "label", "truth"]].reset_index(
        drop=True).assign(
        p_base_rate=base.predict_proba(x.iloc[te])[:, 1],
        p_l1_logistic=p_logit,
        p_lightgbm_raw=raw_test,
        p_lightgbm=calib(raw_test),
    )
    if peer is not None:
        predictions["p_hist_gradient_boosting"] = peer.predict_proba(xb.iloc[te])[:, 1]
    for column in [name for name in predictions.columns if name.startswith("p_")]:
        predictions[column] = round_sig(predictions[column].to_numpy())

    log(f"production model: {c.oof_folds} time folds, each after the first predicted by a "
        f"model fitted on the ones before ({c.oof_folds - 1} out-of-fold fits) for its "
        f"calibrator, then a refit on all {len(data):,} labelled points ({best} rounds)")
    oof_raw = []
    for fit_rows, pred_rows in folds:
        b = lgbm.fit(x.iloc[fit_rows], y[fit_rows], categorical=cat, params=c.lgbm,
                     rounds=best, seed=c.seed)
        oof_raw.append(b.predict(x.iloc[pred_rows]))
    final_booster = lgbm.fit(x, y, categorical=cat, params=c.lgbm, rounds=best, seed=c.seed)
    final_calib = calibration.fit(np.concatenate(oof_raw), np.concatenate(oof_y), c.calibration)
    # the level is read off the model that scores: the out-of-fold scores give the calibrator
    # its shape, but each fold model is older than the production model, so where the base
    # rate moves their lag is not its lag (models/level.py)
    level_fit = level.fit(final_calib(final_booster.predict(x)), y,
                          data["t"].to_numpy("datetime64[D]"),
                          as_of=scoring_day(table, data, horizon_days), method=c.level,
                          window_days=c.level_days, windows=c.level_windows)
    # how far the split model's sharpness landed from its calibrator's on the test slice, out of
    # time: the expected-performance bands carry it (scoring.expected)
    sharp = calibration.sharpness(predictions["p_lightgbm"].to_numpy(), y[te])
    log(f"sharpness on the test slice: calibration slope {sharp.slope:.3f} (se {sharp.se:.3f}); "
        f"the expected-performance bands carry a slope sd of {sharp.sd:.3f}")
    final_calib = dataclasses.replace(final_calib, shift=level_fit.shift, shift_sd=level_fit.sd,
                                      slope_sd=sharp.sd)
    if c.level != "none":
        log(f"level: {c.level}, a log-odds shift of {level_fit.shift:+.3f} after calibrating "
            f"(standard error at the scoring day {level_fit.sd:.3f})")
    for note in level_fit.notes:
        log(f"level: {note}")
    final = ChurnClassifier(final_booster, final_calib, contract)

    check, skipped = calibration.forward_check(raw_cal, y[ca], data["t"].iloc[ca].to_numpy())
    if skipped:
        log(f"calibration check skipped: {skipped}")

    def brier(p, yy):
        return float(np.mean((p - yy) ** 2))

    summary = TrainSummary(
        boundaries=split.boundaries,
        points=SlicePoints(train=len(tr), calibration=len(ca), test=len(te),
                           purged=split.purged, all_labelled=len(data)),
        churn_rate=ChurnRates(train=float(y[tr].mean()), calibration=float(y[ca].mean()),
                              test=float(y[te].mean())),
        best_iteration=int(best),
        calibration=CalibrationSummary(
            method=c.calibration,
            brier_raw_on_calibration=brier(raw_cal, y[ca]),
            brier_calibrated_on_calibration=brier(calib(raw_cal), y[ca]),
            oof_points=int(sum(len(r) for r in oof_raw)),
            level=level_fit.to_dict(),
            test_sharpness=dataclasses.asdict(sharp),
            forward_check=check, forward_check_skipped=skipped),
        logistic_nonzero_coefficients=int(np.count_nonzero(logit[-1].coef_)),
        hist_gradient_boosting_iterations=None if peer is None else peer.best_iteration_,
    )
    return TrainResult(split_model, final, predictions, summary, tuple(dropped))
