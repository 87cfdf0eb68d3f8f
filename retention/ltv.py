"""The documents' lifetime value (seed 002): average purchase value x purchase frequency x
average customer lifespan, from completed (churned) and censored customers alike.

The lifespan is the Kaplan-Meier restricted mean: the area under the KM survival curve of run
lengths up to the longest observed run. Customers still here are censored, not dropped and not
counted as gone, so the mean is neither too short nor too long for what was seen; it cannot
see past the longest run, so it understates a business whose curve has not come down by then.
This is a backward-looking figure; the sBG-based forward value (cohorts.customer_value) is a
different number under a different name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retention.figures import days


def kaplan_meier(durations, observed) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival: distinct event times and S(t) just after each (numpy only).
    `observed` is True where the duration ended in the event, False where censored."""
    times, surv, _ = kaplan_meier_at_risk(durations, observed)
    return times, surv


def kaplan_meier_at_risk(durations, observed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kaplan_meier, and how many were at risk at each event time."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    times = np.unique(d[e])
    at_risk = len(d) - np.searchsorted(np.sort(d), times, side="left")
    deaths = np.bincount(np.searchsorted(times, d[e]), minlength=len(times))
    return times, np.cumprod(1.0 - deaths / at_risk), at_risk


def restricted_mean(durations, observed, tau: float | None = None) -> float:
    """Area under the KM curve on [0, tau] (default: the longest duration, event or not)."""
    d = np.asarray(durations, dtype=float)
    if len(d) == 0:
        return float("nan")
    tau = float(d.max()) if tau is None else float(tau)
    times, surv = kaplan_meier(d, observed)
    keep = times < tau
    edges = np.concatenate([[0.0], times[keep], [tau]])
    heights = np.concatenate([[1.0], surv[keep]])
    return float(np.sum(np.diff(edges) * heights))


@dataclass(frozen=True)
class LifetimeValue:
    """LTV = average_purchase_value x purchases_per_day x lifespan_days (seed 002)."""

    average_purchase_value: float  # revenue / purchases (fees and top-ups)
    purchases_per_day: float  # purchases / customer-days observed (runs, to churn or as-of)
    lifespan_days: float  # Kaplan-Meier restricted mean run length, to the longest run
    customers: int  # runs seen
    churned: int  # runs that ended
    ltv: float


def lifetime_value(runs_: pd.DataFrame, subscriptions: pd.DataFrame, charges: pd.DataFrame, *,
                   as_of: dt.date) -> LifetimeValue:
    """The documents' LTV over every run (a reactivation is a new lifespan). A purchase is a
    paid subscription period or a top-up; a run lasts from its start to its churn date, or to
    `as_of` (censored) while open."""
    start = days(runs_["run_start"])
    a = days([as_of])[0]
    end = days(runs_["churn"], fill=a)
    churned = runs_["churn"].notna().to_numpy()
    length = np.maximum(end - start, 0).astype(float)
    paid = subscriptions[subscriptions["period_start"] < pd.Timestamp(as_of)]
    n = len(paid) + len(charges)
    revenue = float(paid["fee"].sum() + charges["amount"].sum())
    exposure = float(length.sum())
    apv = revenue / n if n else float("nan")
    freq = n / exposure if exposure else float("nan")
    life = restricted_mean(length, churned)
    return LifetimeValue(apv, freq, life, len(length), int(churned.sum()), apv * freq * life)
