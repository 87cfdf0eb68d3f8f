"""What a week's scores promise before any outcome is known: expected AUC, top-decile lift and
Brier score implied by the calibrated probabilities alone (confidence-based performance
estimation, as NannyML's CBPE does), each with a band.

If the probabilities are calibrated, each customer churns with probability p. The band is the
2.5th..97.5th percentile of each metric over outcomes drawn from those p (seeded: the same
scores give the same band on every machine): a 95 % band, the product's one interval level
(evaluate's bootstrap, the backtest's Wilson and Newcombe intervals); the backtest checks the
bands against what happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from common.exact import round_floats

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


def expected(p, *, draws: int = 1000, seed: int = 0) -> Expected:
    """Expected AUC, top-decile lift (churn share among the top 10 % by p over the overall
    share) and Brier score, each with its 2.5..97.5 % band over `draws` simulated outcomes."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = len(p)
    if n == 0:
        nan = float("nan")
        return Expected(nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    ranks = rankdata(p)
    top = np.argsort(-p, kind="stable")[: max(1, int(np.ceil(n / 10)))]
    rng = np.random.default_rng(seed)
    aucs, lifts, briers = np.empty(draws), np.empty(draws), np.empty(draws)
    for k in range(draws):
        y = rng.random(n) < p
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
                    float(np.mean(p * (1 - p))), *band(briers), draws)
