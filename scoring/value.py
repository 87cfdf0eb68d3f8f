"""What each customer at risk is worth to keep: revenue per period x DERL.

DERL (discounted expected residual lifetime, in periods) comes from the retention report's sBG
fit for the customer's signup cohort and plan clock (retention.cohorts), taken as of the
scoring day. "Value if the customer stays" means: given they make their next renewal, which
is what a successful offer buys, so a customer who has paid n periods is valued in period n + 1.

Where a cohort is too small or too short to fit, the pooled fit of its clock is used; where the
clock has no fit at all (a young business: too few renewals yet), a documented simpler estimate:
a constant renewal share r, the share of renewals kept on that clock so far, gives
DERL = (1 + d) / (1 + d - r). Each value says which basis gave it.

Revenue per period is the customer's own: the current plan's fee plus their top-ups of the
trailing window scaled to one billing period.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from retention import cohorts
from retention.config import ReportConfig
from retention.periods import periods as calendar_periods


def current_period_days(points: pd.DataFrame, subscriptions: pd.DataFrame) -> pd.Series:
    """Length in days of the latest billing period that started before each point's t."""
    subs = subscriptions[["customer_id", "period_start", "period_end"]].astype(
        {"period_start": "datetime64[s]", "period_end": "datetime64[s]"}).sort_values(
        "period_start", kind="stable")
    keys = points[["customer_id", "t"]].astype({"t": "datetime64[s]"}).reset_index().sort_values(
        "t", kind="stable")
    latest = pd.merge_asof(keys, subs, left_on="t", right_on="period_start", by="customer_id",
                           allow_exact_matches=False).set_index("index").reindex(points.index)
    return (latest["period_end"] - latest["period_start"]).dt.days.astype("float64")


def cohort_fits(customers: pd.DataFrame, subscriptions: pd.DataFrame, runs: pd.DataFrame, *,
                as_of: dt.date, calendar: str, grace_days: int, config: ReportConfig
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The sBG fits per (cohort, clock) as of `as_of`, as the retention report makes them:
    (fits, renewal histories, the calendar periods that name the cohorts)."""
    first = customers["signup_date"].min()
    first_day = as_of - dt.timedelta(days=1) if pd.isna(first) else pd.Timestamp(first).date()
    per = calendar_periods(first_day, as_of, period=config.period, calendar=calendar)
    hist = cohorts.renewal_histories(runs, subscriptions, per, as_of=as_of, grace_days=grace_days)
    fits = cohorts.fits(hist, min_cohort_size=config.min_cohort_size,
                        min_cohort_periods=config.min_cohort_periods)
    return fits, hist, per


def kept_share(histories: pd.DataFrame) -> dict[int, float]:
    """Per clock: renewals kept / renewals faced over every first run (the fallback's r)."""
    out = {}
    for clock, g in histories.groupby("period_days", sort=True):
        kept = float((g["renewals"] - g["churned"].astype(int)).clip(lower=0).sum())
        faced = kept + float(g["churned"].sum())
        if faced > 0:
            out[int(clock)] = kept / faced
    return out


def values(frame: pd.DataFrame, period_days: pd.Series, signup: pd.Series, fits: pd.DataFrame,
           histories: pd.DataFrame, per: pd.DataFrame, discount: float) -> pd.DataFrame:
    """value, derl, revenue_per_period and basis ("cohort", "pooled", "renewal share" or
    "none") for each row of the feature frame (columns fee, charge_total, window_days,
    periods_paid), aligned to its index."""
    days = period_days.fillna(30.0).clip(lower=1.0)
    revenue = (frame["fee"].to_numpy(float) + frame["charge_total"].to_numpy(float)
               * days.to_numpy() / frame["window_days"].clip(lower=1).to_numpy(float))
    key = pd.DataFrame({
        "cohort": cohorts.cohort_of(signup, per) if len(per) else np.full(len(frame), ""),
        "period_days": days.to_numpy(),
        "periods_survived": frame["periods_paid"].to_numpy(float),
        "revenue_per_period": revenue,
    })
    out = cohorts.customer_values(key, fits, discount)
    derl = out["derl"].to_numpy(float)
    basis = out["basis"].to_numpy(object)
    share = kept_share(histories)
    clocks = cohorts.plan_clock(key["period_days"])
    r = np.array([share.get(int(c), np.nan) for c in clocks])
    geometric = (1 + discount) / (1 + discount - r)
    fallback = (basis == "none") & np.isfinite(geometric)
    derl = np.where(fallback, geometric, derl)
    basis = np.where(fallback, "renewal share", basis)
    return pd.DataFrame({"revenue_per_period": revenue, "derl": derl, "value": revenue * derl,
                         "value_basis": basis}, index=frame.index)


def signup_dates(frame: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """Each row's customer's signup date (the cohort), aligned to the frame's index."""
    s = customers.drop_duplicates("customer_id").set_index("customer_id")["signup_date"]
    return pd.Series(s.reindex(frame["customer_id"].to_numpy()).to_numpy(), index=frame.index)
