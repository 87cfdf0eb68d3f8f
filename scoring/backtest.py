"""How did a week's scores do? Each scored week against the churn that followed it.

Pure: it takes one week's scores (a `scores.parquet` of the history) and what happened to each
customer (1 = churned within the model's horizon, 0 = stayed), and returns the week's figures:
realised AUC, Brier, top-decile lift and EMPC; the level (mean probability against realised
churn, with a binomial interval); the list's precision; what the campaign changed (churn of the
listed against the control customers who would have been listed); and whether the realised
AUC, Brier and lift fall inside the band the scores promised (scoring.expected).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from models.evaluation import point_metrics
from models.profit import empc

Z95 = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a share k / n (NaN, NaN when n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def difference(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """k1/n1 - k2/n2 with Newcombe's hybrid score interval (method 10 of Newcombe 1998): the
    Wilson intervals of both shares combined, sound for small groups and shares near 0."""
    if n1 == 0 or n2 == 0:
        return float("nan"), float("nan"), float("nan")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d, d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """The reliability curve: customers in deciles of p; mean p and realised churn per bin."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(bins, len(p))) if len(p) else []
    rows = []
    for i, g in enumerate(groups):
        lo, hi = wilson(int(y[g].sum()), len(g))
        rows.append({"bin": i + 1, "customers": len(g), "mean_probability": float(p[g].mean()),
                     "churn": float(y[g].mean()), "churn_lo": lo, "churn_hi": hi})
    return pd.DataFrame(rows, columns=["bin", "customers", "mean_probability", "churn",
                                       "churn_lo", "churn_hi"])


def judge(scores: pd.DataFrame, churned: np.ndarray, expected: dict, *, clv: float,
          offer_cost: float, contact_cost: float, alpha: float = 6.0,
          beta: float = 14.0) -> dict:
    """One week's figures (a flat dict: a row of the backtest table)."""
    y = np.asarray(churned, dtype=np.int64)
    p = scores["churn_probability"].to_numpy(float)
    n, k = len(y), int(y.sum())
    row: dict = {"customers": n, "churned": k, "mean_probability": float(p.mean()) if n else np.nan,
                 "churn": k / n if n else np.nan}
    row["churn_lo"], row["churn_hi"] = wilson(k, n)
    row["level_inside"] = bool(row["churn_lo"] <= row["mean_probability"] <= row["churn_hi"])
    both = 0 < k < n
    m = point_metrics(y, p) if both else {}
    row["auc"] = m.get("roc_auc", np.nan)
    row["brier"] = float(np.mean((p - y) ** 2)) if n else np.nan
    row["lift_top_decile"] = m.get("lift_at_10", np.nan)
    if both:
        e = empc(p, y, clv, offer_cost=offer_cost, contact_cost=contact_cost, alpha=alpha,
                 beta=beta)
        row["empc"], row["empc_contact_share"] = e.empc, e.contact_share
    else:
        row["empc"] = row["empc_contact_share"] = np.nan
    for name, low, high in (("auc", "auc_low", "auc_high"), ("brier", "brier_low", "brier_high"),
                            ("lift_top_decile", "lift_low", "lift_high")):
        value = row[name]
        row[f"{name}_expected"] = expected.get(name, np.nan)
        row[f"{name}_band_low"] = expected.get(low, np.nan)
        row[f"{name}_band_high"] = expected.get(high, np.nan)
        row[f"{name}_inside"] = bool(expected.get(low, np.nan) <= value <= expected.get(high, np.nan))
    listed = scores["in_list"].to_numpy(bool)
    row["listed"] = int(listed.sum())
    row["list_precision"] = float(y[listed].mean()) if listed.any() else np.nan
    # what the campaign changed: the listed against the control customers who would have been
    # listed (their expected profit at least the list's last one's)
    net = scores["expected_net"].to_numpy(float)
    control = scores["holdout"].to_numpy(bool).copy()
    if listed.any():
        control &= net >= net[listed].min()
    else:
        control &= False
    row["control_would_list"] = int(control.sum())
    row["list_churn"] = float(y[listed].mean()) if listed.any() else np.nan
    row["control_churn"] = float(y[control].mean()) if control.any() else np.nan
    row["campaign_effect"], row["campaign_effect_lo"], row["campaign_effect_hi"] = difference(
        int(y[listed].sum()), int(listed.sum()), int(y[control].sum()), int(control.sum()))
    return row
