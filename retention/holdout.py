"""Is the projection any good? A backtest of the sBG projection against Kaplan-Meier carried
forward, on what happened after the fits were made.

Both are fitted on the export as it was on a holdout day (the last months cut off, as
records.cut cuts them), per signup cohort and plan clock. Each projects the cohort's surviving
share for the renewals that fall in the held-out months: the sBG its survival curve, Kaplan-
Meier its last value kept flat (the naive "nothing changes" forecast). What happened is the
Kaplan-Meier curve of the same customers' first runs seen in the full export. The error of a
cohort is the mean absolute difference of the shares over those renewals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention import sbg
from retention.cohorts import POOLED
from retention.ltv import kaplan_meier_at_risk

COLUMNS = ("cohort", "period_days", "customers", "renewals_before", "first_t", "last_t",
           "mae_sbg", "mae_km", "winner", "reason")


def km_at(renewals, churned, t, *, min_at_risk: int = 1) -> np.ndarray:
    """Kaplan-Meier survival after t renewals (t >= 0 integers): 1 before the first churn.

    `min_at_risk`: the curve stops at the last churn with at least that many histories at
    risk and stays flat after it (a tail of one or two customers can drop it to 0, which
    would forecast that everyone still there leaves)."""
    times, surv, at_risk = kaplan_meier_at_risk(renewals, churned)
    keep = at_risk >= min_at_risk
    times, surv = times[keep], surv[keep]  # a prefix: at risk only falls with time
    at = np.searchsorted(times, np.asarray(t, dtype=float), side="right") - 1
    return np.where(at >= 0, surv[np.clip(at, 0, None)] if len(surv) else 1.0, 1.0)


def renewals_within(period_days: int, days: int) -> int:
    """How many renewals of a `period_days` clock fall in `days` (6 months: 6 monthly, 2
    quarterly, none yearly)."""
    return int(days // period_days)


def compare(before: pd.DataFrame, after: pd.DataFrame, fits_before: pd.DataFrame, *,
            held_out_days: int) -> pd.DataFrame:
    """Per (cohort, clock) fitted before the holdout day (and POOLED per clock): the mean
    absolute error of the surviving share over the renewals t = T + 1 .. T + h, where T is the
    last renewal observed before the day, h the renewals the held-out days hold on that clock,
    capped at the last renewal observed after (what happened is Kaplan-Meier on `after`, the
    renewal histories of the same customers in the full export). `winner` is the method with
    the smaller error ('tie' if equal); rows without a comparison give the reason."""
    ids = before["customer_id"]
    after = after[after["customer_id"].isin(ids)].drop(columns="cohort").merge(
        before[["customer_id", "cohort"]], on="customer_id")
    rows = []
    for f in fits_before[fits_before["reason"] == ""].itertuples(index=False):
        b = before[before["period_days"] == f.period_days]
        a = after[after["period_days"] == f.period_days]
        if f.cohort != POOLED:
            b, a = b[b["cohort"] == f.cohort], a[a["cohort"] == f.cohort]
        T = int(f.periods_observed)
        h = renewals_within(int(f.period_days), held_out_days)
        last = min(T + h, int(a["renewals"].max()) if len(a) else T)
        row = {"cohort": f.cohort, "period_days": int(f.period_days), "customers": len(b),
               "renewals_before": T, "first_t": T + 1, "last_t": last, "mae_sbg": np.nan,
               "mae_km": np.nan, "winner": "", "reason": ""}
        if h == 0:
            row["reason"] = f"no {f.period_days}-day renewal falls in {held_out_days} days"
        elif last <= T:
            row["reason"] = "no renewal after the holdout day observed yet"
        else:
            t = np.arange(T + 1, last + 1)
            truth = km_at(a["renewals"], a["churned"], t)
            flat = km_at(b["renewals"], b["churned"], [T])[0]
            row["mae_sbg"] = float(np.mean(np.abs(sbg.survival(f.alpha, f.beta, t) - truth)))
            row["mae_km"] = float(np.mean(np.abs(flat - truth)))
            row["winner"] = ("sBG" if row["mae_sbg"] < row["mae_km"] else
                             "Kaplan-Meier" if row["mae_km"] < row["mae_sbg"] else "tie")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def verdict(table: pd.DataFrame) -> str:
    """One sentence: over the compared cohorts (not the pooled rows), which method has the
    smaller mean error, by how much, and in how many cohorts it wins."""
    done = table[(table["cohort"] != POOLED) & table["mae_sbg"].notna()]
    if not len(done):
        return "no cohort could be compared (too little history before the holdout day)"
    s, k = float(done["mae_sbg"].mean()), float(done["mae_km"].mean())
    wins = int((done["winner"] == "sBG").sum())
    if s == k:
        return (f"sBG and Kaplan-Meier carried forward are even over {len(done)} cohorts "
                f"(mean absolute error {100 * s:.2f} percentage points)")
    best, worse, a, b = ("sBG", "Kaplan-Meier carried forward", s, k) if s < k else (
        "Kaplan-Meier carried forward", "sBG", k, s)
    return (f"{best} wins: mean absolute error of the surviving share {100 * a:.2f} "
            f"percentage points against {100 * b:.2f} for {worse} ({100 * (b - a) / b:.0f} % "
            f"lower), over {len(done)} cohorts; sBG is better in {wins} of them")
