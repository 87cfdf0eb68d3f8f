"""Calibrators that turn LightGBM scores into probabilities, stored as plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

Method = Literal["isotonic", "sigmoid"]
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    method: Method
    x: tuple[float, ...]  # isotonic knots (score), or (slope, intercept) on the logit
    y: tuple[float, ...]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(scores, self.x, self.y)
        slope, intercept = self.x
        return 1.0 / (1.0 + np.exp(-(slope * _logit(scores) + intercept)))

    def to_dict(self) -> dict:
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        return cls(d["method"], tuple(d["x"]), tuple(d["y"]))


def fit(scores: np.ndarray, y: np.ndarray, method: Method) -> Calibrator:
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
        # keep the probabilities strictly inside (0, 1): log loss must stay finite
        ys = np.clip(iso.y_thresholds_, EPS, 1 - EPS)
        return Calibrator("isotonic", tuple(iso.X_thresholds_.tolist()), tuple(ys.tolist()))
    lr = LogisticRegression(C=1e6).fit(_logit(scores)[:, None], y)
    return Calibrator("sigmoid", (float(lr.coef_[0, 0]), float(lr.intercept_[0])), ())


def forward_check(scores: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, dict[str, float]]:
    """Does calibrating help, and which way? Fit on the older half of the calibration slice,
    score the newer half, as production will: log loss, Brier, ECE and the AUC (isotonic's
    flat steps tie scores and can cost ranking) for the raw scores and each method."""
    from models.evaluation import batch_metrics

    scores, y, t = np.asarray(scores, np.float64), np.asarray(y, np.float64), np.asarray(t)
    cut = np.sort(t)[len(t) // 2]
    old, new = t < cut, t >= cut
    if old.sum() == 0 or new.sum() == 0 or len(np.unique(y[old])) < 2:
        return {}
    candidates = {"raw": scores[new]}
    for method in ("sigmoid", "isotonic"):
        candidates[method] = fit(scores[old], y[old], method)(scores[new])
    ones = np.ones((1, int(new.sum())))
    out = {}
    for name, p in candidates.items():
        m = batch_metrics(y[new], p, ones)
        out[name] = {k: float(m[k][0]) for k in ("log_loss", "brier", "ece", "roc_auc")}
    return out
