"""Calibrators that turn LightGBM scores into probabilities, stored as plain JSON.

The same bits on every machine (a committed dvc.lock is reproduced elsewhere): the sigmoid is
fitted by Newton's method on plain numpy sums (no BLAS, whose dot products differ in their
last bits between CPUs and thread counts), with scipy.special's logit/expit (numpy's exp and
log pick CPU-specific kernels), and the fitted parameters are rounded to 9 significant digits
right after fitting, so the saved calibrator and the predictions made with it agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from sklearn.isotonic import IsotonicRegression

from common.exact import round_sig
from models.evaluation import point_metrics

Method = Literal["isotonic", "sigmoid"]
EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """The log-odds of probabilities kept strictly inside (0, 1)."""
    return special.logit(np.clip(p, EPS, 1 - EPS))


@dataclass(frozen=True)
class Calibrator:
    method: Method
    x: tuple[float, ...]  # isotonic knots (score), or (slope, intercept) on the logit
    y: tuple[float, ...]
    shift: float = 0.0  # the level's log-odds shift after calibrating (models.level)
    shift_sd: float = 0.0  # the level's standard error at the scoring day (log-odds): the bands'
    slope_sd: float = 0.0  # how far out-of-time sharpness lands from 1 (sharpness_sd): the bands'

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            p = np.interp(scores, self.x, self.y)
            return p if self.shift == 0 else special.expit(logit(p) + self.shift)
        slope, intercept = self.x
        return special.expit(slope * logit(scores) + intercept + self.shift)

    def to_dict(self) -> dict:
        d = {"method": self.method, "x": list(self.x), "y": list(self.y)}
        return d | ({"shift": self.shift} if self.shift else {}) | (
            {"shift_sd": self.shift_sd} if self.shift_sd else {}) | (
            {"slope_sd": self.slope_sd} if self.slope_sd else {})

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        return cls(d["method"], tuple(d["x"]), tuple(d["y"]), float(d.get("shift", 0.0)),
                   float(d.get("shift_sd", 0.0)), float(d.get("slope_sd", 0.0)))


def fit(scores: np.ndarray, y: np.ndarray, method: Method) -> Calibrator:
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
        # keep the probabilities strictly inside (0, 1): log loss must stay finite
        ys = round_sig(np.clip(iso.y_thresholds_, EPS, 1 - EPS))
        return Calibrator("isotonic", tuple(iso.X_thresholds_.tolist()), tuple(ys.tolist()))
    slope, intercept = _fit_sigmoid(logit(scores), y)
    return Calibrator("sigmoid", (round_sig(slope), round_sig(intercept)), ())


C = 1e6  # the slope's L2 penalty 1 / (2 C) slope**2, as sklearn's LogisticRegression(C=1e6)


def _loss(x: np.ndarray, y: np.ndarray, slope: float, intercept: float) -> float:
    z = slope * x + intercept
    return float(-np.sum(y * special.log_expit(z) + (1 - y) * special.log_expit(-z))
                 + slope * slope / (2 * C))


def _hessian(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """The penalised log loss's Hessian in (slope, intercept), weights w = p(1 - p), on plain
    numpy sums: (d2/dslope2, d2/dslope dintercept, d2/dintercept2)."""
    return float(np.sum(w * x * x)) + 1 / C, float(np.sum(w * x)), float(np.sum(w))


def _fit_sigmoid(x: np.ndarray, y: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """(slope, intercept) of the logistic regression of `y` on `x` (the logit of the score):
    Newton's method with step halving, on elementwise products and numpy's sums only, so the
    result does not depend on BLAS kernels or threads. Converges to the optimum itself
    (sklearn's lbfgs stops at a gradient tolerance, a few digits short)."""
    a, b = 0.0, float(special.logit(np.clip(np.mean(y), EPS, 1 - EPS)))
    f = _loss(x, y, a, b)
    for _ in range(max_iter):
        p = special.expit(a * x + b)
        r, w = p - y, p * (1 - p)
        ga, gb = float(np.sum(r * x)) + a / C, float(np.sum(r))
        haa, hab, hbb = _hessian(x, w)
        det = haa * hbb - hab * hab
        if not det > 0:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        step = 1.0
        while True:
            na, nb = a - step * da, b - step * db
            nf = _loss(x, y, na, nb)
            if nf <= f or step < 1e-10:
                break
            step /= 2
        if nf > f:  # no descent left: at the optimum to machine precision
            break
        moved = abs(na - a) <= 1e-12 * (1 + abs(a)) and abs(nb - b) <= 1e-12 * (1 + abs(b))
        a, b, f = na, nb, nf
        if moved:
            break
    return a, b


@dataclass(frozen=True)
class Sharpness:
    """The calibration slope of probabilities judged out of time (1: as sharp as they should
    be; above 1: too timid; below: too bold), its standard error, and the standard deviation of
    out-of-time sharpness this one look implies: sqrt(max(0, (slope - 1)^2 - se^2)), the
    unbiased estimate of E[(slope - 1)^2] net of the look's own noise."""
    slope: float
    se: float
    sd: float


def sharpness(p: np.ndarray, y: np.ndarray) -> Sharpness:
    """How sharp calibrated probabilities `p` were on outcomes `y` they never saw: the slope of
    the logistic regression of y on logit(p), with its standard error from the Hessian."""
    x, y = logit(np.asarray(p, dtype=np.float64)), np.asarray(y, dtype=np.float64)
    slope, intercept = _fit_sigmoid(x, y)
    w = special.expit(slope * x + intercept)
    haa, hab, hbb = _hessian(x, w * (1 - w))
    det = haa * hbb - hab * hab
    if not det > 0:  # every probability the same: no slope to read, nothing to carry
        return Sharpness(round_sig(slope), 0.0, 0.0)
    se = float(np.sqrt(hbb / det))
    return Sharpness(round_sig(slope), round_sig(se),
                     round_sig(float(np.sqrt(max(0.0, (slope - 1) ** 2 - se * se)))))


MIN_HALF = 200  # points on each side of the forward check, and both classes on each


def forward_check(scores: np.ndarray, y: np.ndarray, t: np.ndarray
                  ) -> tuple[dict[str, dict[str, float]], str]:
    """Does calibrating help, and which way? Fit on the older half of the calibration slice,
    score the newer half, as production will: log loss, Brier, ECE and the AUC (isotonic's
    flat steps tie scores and can cost ranking) for the raw scores and each method.

    The halves are split between two dates (a date's points stay together), at the boundary
    that balances them best. Returns the table, or an empty one and why it was skipped."""
    scores, y, t = np.asarray(scores, np.float64), np.asarray(y, np.float64), np.asarray(t)
    dates, counts = np.unique(t, return_counts=True)
    if len(dates) < 2:
        return {}, "the calibration slice has a single date"
    before = np.cumsum(counts)[:-1]  # points before each candidate boundary
    cut = dates[1:][np.argmin(np.abs(before - len(t) / 2))]
    old, new = t < cut, t >= cut
    for name, half in (("older", old), ("newer", new)):
        if half.sum() < MIN_HALF or len(np.unique(y[half])) < 2:
            return {}, (f"the {name} half of the calibration slice has {int(half.sum())} points "
                        f"and {len(np.unique(y[half]))} label value(s); the check needs "
                        f"{MIN_HALF} and both")
    candidates = {"raw": scores[new]}
    for method in ("sigmoid", "isotonic"):
        candidates[method] = fit(scores[old], y[old], method)(scores[new])
    out = {}
    for name, p in candidates.items():
        m = point_metrics(y[new], p)
        out[name] = {k: m[k] for k in ("log_loss", "brier", "ece", "roc_auc")}
    return out, ""


def advice(check: dict[str, dict[str, float]], method: str, tolerance: float = 5e-4
           ) -> str | None:
    """One line when the forward check's best log loss beats the method in use by more than
    `tolerance`; None otherwise."""
    if not check:
        return None
    loss = {k: m["log_loss"] for k, m in check.items()}
    best = min(loss, key=loss.get)
    if loss[best] >= loss[method] - tolerance:
        return None
    if best == "raw":
        return (f"the raw scores beat {method} calibration here (log loss {loss['raw']:.4f} vs "
                f"{loss[method]:.4f}): LightGBM's scores are already close to calibrated. The "
                "product always calibrates; the test metrics show both (lightgbm_uncalibrated).")
    return (f"{best} calibration beat {method} here (log loss {loss[best]:.4f} vs "
            f"{loss[method]:.4f}): consider train.calibration: {best}.")
