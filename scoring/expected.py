"""What a week's scores promise before any outcome is known: expected AUC, top-decile lift and
Brier score implied by the calibrated probabilities alone (confidence-based performance
estimation, as NannyML's CBPE does), each with a band.

If the probabilities are calibrated, each customer churns with probability p. The band is the
2.5th..97.5th percentile of each metric over outcomes drawn from those p (seeded: the same
scores give the same band on every machine): a 95 % band, the product's one interval level
(evaluate's bootstrap, the backtest's Wilson and Newcombe intervals); the backtest checks the
bands against what happened.

The probabilities' level is itself an estimate, read off labelled weeks that end a horizon
before the scoring day (models.level), with a standard error there (`level_sd`, on the
log-odds). Each draw first moves every p by one shift drawn from N(0, level_sd^2), then draws
the outcomes: a week whose base rate is where the level's own uncertainty allows is not flagged.
The Brier score moves with the level almost one for one; the AUC and the lift barely do.
Likewise the sharpness: a calibrator promises a calibration slope of 1, and out of time a model
lands off it (the split model on the test slice, models.calibration.sharpness): each draw also
scales the log-odds around the mean's by a slope drawn from N(1, slope_sd^2). The AUC and the
lift move with the sharpness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special
from scipy.stats import rankdata

from common.exact import round_floats
from models.calibration import logit

LOW, HIGH = 2.5, 97.5  # the band's percentiles: 95 %


@dataclass(frozen=True)
class Expected:
    auc: float
    auc_low: float
    auc_high: float
    lift_top_decile: float
    lift_low: float
    lift_high: float
    brier: float
    brier_low: float
    brier_high: float
    draws: int
    level_sd: float = 0.0  # the level's standard error the draws carried (log-odds)
    slope_sd: float = 0.0  # the sharpness's standard deviation they carried

    def to_dict(self) -> dict[str, float]:
        return round_floats(asdict(self))


def expected_auc(p: np.ndarray) -> float:
    """E[wins] / E[pairs]: the chance a churner outranks a stayer when each customer churns with
    probability p (ties count a half; a customer is never paired with itself)."""
    p = np.asarray(p, dtype=float)
    pos, neg = p.sum(), (1 - p).sum()
    pairs = pos * neg - float(np.sum(p * (1 - p)))
    if len(p) < 2 or pairs <= 0:
        return float("nan")
    ps = np.sort(p, kind="stable")
    values, start, size = np.unique(ps, return_index=True, return_counts=True)
    group_neg = np.add.reduceat(1 - ps, start)
    below = np.concatenate([[0.0], np.cumsum(group_neg)[:-1]])  # stayers' mass scored lower
    group = np.repeat(np.arange(len(values)), size)
    wins = float(np.sum(ps * (below[group] + 0.5 * (group_neg[group] - (1 - ps)))))
    return wins / pairs


def _auc(y: np.ndarray, ranks: np.ndarray) -> float:
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected(p, *, draws: int = 1000, seed: int = 0, level_sd: float = 0.0,
             slope_sd: float = 0.0) -> Expected:
    """Expected AUC, top-decile lift (churn share among the top 10 % by p over the overall
    share) and Brier score, each with its 2.5..97.5 % band over `draws` simulated outcomes, each
    drawn at a sharpness scaled by N(1, slope_sd^2) and a level moved by N(0, level_sd^2) on
    the log-odds."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = len(p)
    if n == 0:
        nan = float("nan")
        return Expected(nan, nan, nan, nan, nan, nan, nan, nan, nan, 0, level_sd, slope_sd)
    ranks = rankdata(p)
    top = np.argsort(-p, kind="stable")[: max(1, int(np.ceil(n / 10)))]
    rng = np.random.default_rng(seed)
    odds = logit(p) if level_sd > 0 or slope_sd > 0 else None
    centre = float(logit(np.array([p.mean()]))[0])
    aucs, lifts, briers = np.empty(draws), np.empty(draws), np.empty(draws)
    for k in range(draws):
        q = p
        if odds is not None:
            slope = rng.normal(1.0, slope_sd) if slope_sd > 0 else 1.0
            shift = rng.normal(0.0, level_sd) if level_sd > 0 else 0.0
            q = special.expit(centre + slope * (odds - centre) + shift)
        y = rng.random(n) < q
        aucs[k] = _auc(y, ranks)
        share = y.mean()
        lifts[k] = y[top].mean() / share if share > 0 else np.nan
        briers[k] = np.mean((p - y) ** 2)
    lift = float(p[top].mean() / p.mean()) if p.mean() > 0 else float("nan")

    def band(v):
        v = v[np.isfinite(v)]
        return (float(np.percentile(v, LOW)), float(np.percentile(v, HIGH))) if len(v) else (
            float("nan"), float("nan"))

    return Expected(expected_auc(p), *band(aucs), lift, *band(lifts),
                    float(np.mean(p * (1 - p))), *band(briers), draws, level_sd, slope_sd)
