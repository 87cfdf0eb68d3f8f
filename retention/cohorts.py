"""Signup cohorts: how many are still here after k periods, and where the data allow it the
sBG fit that projects the rest and values a customer by their discounted residual lifetime.

Plans renew on different clocks (30-day, 90-day, yearly), so a cohort is fitted apart per
clock: one renewal of a yearly plan is not one renewal of a monthly one. A customer's clock is
that of the first period of their first run; the sBG sees first runs only (a reactivation is a
new history, not a continuation of the cohort's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.observations import as_seen
from retention import sbg
from retention.figures import FAR, days

CLOCKS = (30, 90, 365)
POOLED = "all"  # the cohort label of the fit over every cohort of a clock


def plan_clock(period_days) -> np.ndarray:
    """The plan clock (30, 90 or 365 days) nearest, by ratio, to a billing period's length, so
    that 28..31-day months are one clock and a 92-day quarter is the 90-day one."""
    d = np.maximum(np.asarray(period_days, dtype=float), 1.0)
    clocks = np.asarray(CLOCKS, dtype=float)
    return clocks[np.argmin(np.abs(np.log(d[..., None] / clocks)), axis=-1)].astype(np.int64)


def cohort_of(dates, periods_: pd.DataFrame) -> np.ndarray:
    """The label of the period each date falls in (NaN-free: dates before the first period get
    the first label, after the last the last)."""
    at = np.searchsorted(days(periods_["start"]), days(dates), side="right") - 1
    return periods_["label"].to_numpy()[np.clip(at, 0, len(periods_) - 1)]


def curves(runs_: pd.DataFrame, periods_: pd.DataFrame) -> pd.DataFrame:
    """Long table: cohort, cohort_start, customers, k, active, share = active / customers, the
    share of the cohort (signups in one period) active at the end of the k-th period after it
    (k = 0: the signup period's own end). A reactivated customer counts as active again. Cells
    whose period is partial are censored: active and share are NaN, not zero."""
    p0, p1 = days(periods_["start"]), days(periods_["end"])
    partial = periods_["partial"].to_numpy(bool)
    signup = runs_.drop_duplicates("customer_id")[["customer_id", "signup_date"]]
    c_at = np.searchsorted(p0, days(signup["signup_date"]), side="right") - 1
    c_of = pd.Series(c_at, index=signup["customer_id"].to_numpy())
    start = days(runs_["run_start"])
    churn = days(runs_["churn"], fill=FAR)
    run_cohort = c_of.reindex(runs_["customer_id"].to_numpy()).to_numpy()
    sizes = np.bincount(c_at[c_at >= 0], minlength=len(p0))
    rows = []
    for c in range(len(p0)):
        if sizes[c] == 0:
            continue
        mine = run_cohort == c
        for j in range(c, len(p0)):
            b = p1[j]
            active = np.nan if partial[j] else float(len(pd.unique(
                runs_["customer_id"].to_numpy()[mine & (start < b) & (b < churn)])))
            rows.append((periods_["label"].iat[c], periods_["start"].iat[c], int(sizes[c]), j - c,
                         active, active / sizes[c]))
    return pd.DataFrame(rows, columns=["cohort", "cohort_start", "customers", "k", "active", "share"])


def curve_matrix(curves_: pd.DataFrame) -> pd.DataFrame:
    """The curves as a cohort x k table of shares (NaN where censored), cohorts in time order."""
    order = curves_.drop_duplicates("cohort").sort_values("cohort_start")["cohort"]
    return curves_.pivot(index="cohort", columns="k", values="share").reindex(order)


def renewal_histories(runs_: pd.DataFrame, subscriptions: pd.DataFrame, periods_: pd.DataFrame, *,
                      as_of: dt.date, grace_days: int) -> pd.DataFrame:
    """One row per customer's first run: customer_id, cohort, period_days (the plan clock of its
    first period), periods (billing periods on that clock, until a plan change to another
    clock), churned (the run ended on that clock), and renewals = the renewal it churned at
    (= periods) when churned; after a change of clock, the renewals survived on the first one
    (= periods, censored there); else periods - 1 (censored: the current renewal is unknown)."""
    first = runs_[runs_["run"] == 0]
    subs = as_seen(subscriptions, view=as_of, grace_days=grace_days)
    subs = subs.merge(first[["customer_id", "run_start", "churn"]], on="customer_id")
    s0 = days(subs["period_start"])
    inside = (s0 >= days(subs["run_start"])) & (s0 < days(subs["churn"], fill=FAR))
    subs = subs[inside].sort_values(["customer_id", "period_start"], kind="stable")
    # the history on the first period's clock: a plan change to another clock ends it, censored
    # after the renewals survived on that clock (it would otherwise mix 30- and 90-day renewals)
    clock = pd.Series(plan_clock(days(subs["period_end"]) - days(subs["period_start"])),
                      index=subs.index)
    cust = subs["customer_id"]
    same = clock == clock.groupby(cust, sort=False).transform("first")
    lead = same.astype(int).groupby(cust, sort=False).cummin().astype(bool)
    per = pd.DataFrame({"periods": lead.groupby(cust, sort=False).sum(),
                        "switched": (~lead).groupby(cust, sort=False).any(),
                        "period_days": clock.groupby(cust, sort=False).first()})
    out = first[["customer_id", "signup_date", "churn"]].merge(
        per.rename_axis("customer_id").reset_index(), on="customer_id", how="inner")
    out["churned"] = out["churn"].notna() & ~out["switched"]
    out["renewals"] = np.where(out["churned"] | out["switched"], out["periods"],
                               out["periods"] - 1)
    out["cohort"] = cohort_of(out["signup_date"], periods_)
    return out[["customer_id", "cohort", "period_days", "periods", "churned", "renewals"]]


def _fit_row(group: pd.DataFrame, *, min_size: int, min_periods: int) -> dict:
    n = len(group)
    observed = int(group["renewals"].max()) if n else 0
    row = {"customers": n, "periods_observed": observed, "alpha": np.nan, "beta": np.nan,
           "log_likelihood": np.nan, "reason": ""}
    if n < min_size:
        row["reason"] = f"too small to fit: {n} customers (min_cohort_size {min_size})"
        return row
    if observed < min_periods:
        row["reason"] = (f"too short to fit: {observed} renewals observed "
                         f"(min_cohort_periods {min_periods})")
        return row
    churned = group["churned"].to_numpy(bool)
    r = group["renewals"].to_numpy(np.int64)
    lost = np.bincount(r[churned], minlength=observed + 1)[1:]
    censored = np.bincount(r[~churned], minlength=observed + 1)
    try:
        f = sbg.fit(lost, censored)
    except ValueError as e:
        row["reason"] = f"no fit: {e}"
        return row
    row.update(alpha=f.alpha, beta=f.beta, log_likelihood=f.log_likelihood)
    return row


def fits(histories: pd.DataFrame, *, min_cohort_size: int, min_cohort_periods: int) -> pd.DataFrame:
    """The sBG fit per (cohort, period_days), and per period_days over all cohorts (cohort =
    POOLED, the fallback). Columns: cohort, period_days, customers, periods_observed, alpha,
    beta, log_likelihood, reason ('' where fitted; otherwise why there is no number)."""
    rows = []
    limits = dict(min_size=min_cohort_size, min_periods=min_cohort_periods)
    for (cohort, clock), g in histories.groupby(["cohort", "period_days"], sort=True):
        rows.append({"cohort": cohort, "period_days": int(clock), **_fit_row(g, **limits)})
    for clock, g in histories.groupby("period_days", sort=True):
        rows.append({"cohort": POOLED, "period_days": int(clock), **_fit_row(g, **limits)})
    return pd.DataFrame(rows, columns=["cohort", "period_days", "customers", "periods_observed",
                                       "alpha", "beta", "log_likelihood", "reason"])


def projection(fits_: pd.DataFrame, horizon_periods: int) -> pd.DataFrame:
    """Survival of every fitted cohort for renewals t = 0 .. periods_observed + horizon:
    cohort, period_days, t, survival, projected (t beyond what was observed)."""
    rows = []
    for f in fits_[fits_["reason"] == ""].itertuples(index=False):
        t = np.arange(f.periods_observed + horizon_periods + 1)
        rows.append(pd.DataFrame({"cohort": f.cohort, "period_days": f.period_days, "t": t,
                                  "survival": sbg.survival(f.alpha, f.beta, t),
                                  "projected": t > f.periods_observed}))
    cols = ["cohort", "period_days", "t", "survival", "projected"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


@dataclass(frozen=True)
class CustomerValue:
    """A customer's forward-looking value = revenue per period x DERL, and which fit gave it."""

    value: float
    derl: float
    basis: str  # "cohort", "pooled" (the cohort has no fit: all cohorts of the clock), "none"
    note: str


def _lookup(fits_: pd.DataFrame, cohort: str, period_days: int) -> tuple[pd.Series | None, str, str]:
    fitted = fits_[(fits_["period_days"] == period_days) & (fits_["reason"] == "")]
    own = fitted[fitted["cohort"] == cohort]
    if len(own):
        return own.iloc[0], "cohort", ""
    why = fits_[(fits_["cohort"] == cohort) & (fits_["period_days"] == period_days)]["reason"]
    why = why.iloc[0] if len(why) else f"cohort {cohort} has no {period_days}-day customers"
    pooled = fitted[fitted["cohort"] == POOLED]
    if len(pooled):
        return pooled.iloc[0], "pooled", f"pooled {period_days}-day fit used: {why}"
    return None, "none", f"no {period_days}-day fit at all: {why}"


def customer_value(cohort: str, period_days: int, periods_survived: int, revenue_per_period: float,
                   fits_: pd.DataFrame, discount: float) -> CustomerValue:
    """Value of a customer of `cohort` on a `period_days` plan who has renewed `periods_survived`
    times (so is in period n = periods_survived + 1): revenue_per_period x DERL(n) of the
    cohort's sBG fit for that clock. Where the cohort has none (too small, too short, no churn),
    the pooled fit of all cohorts of the clock is used, and `basis`/`note` say so; with no
    pooled fit either the value is NaN."""
    clock = int(plan_clock(period_days))
    row, basis, note = _lookup(fits_, cohort, clock)
    if row is None:
        return CustomerValue(np.nan, np.nan, basis, note)
    d = float(sbg.derl(row["alpha"], row["beta"], periods_survived + 1, discount))
    return CustomerValue(revenue_per_period * d, d, basis, note)


def customer_values(customers: pd.DataFrame, fits_: pd.DataFrame, discount: float) -> pd.DataFrame:
    """`customer_value` for a whole frame (columns cohort, period_days, periods_survived,
    revenue_per_period), vectorised for the weekly scoring; adds derl, value and basis."""
    fitted = fits_[fits_["reason"] == ""][["cohort", "period_days", "alpha", "beta"]]
    key = customers.assign(period_days=plan_clock(customers["period_days"]))
    own = key[["cohort", "period_days"]].merge(fitted, on=["cohort", "period_days"], how="left")
    pooled = key[["period_days"]].merge(fitted[fitted["cohort"] == POOLED].drop(columns="cohort"),
                                        on="period_days", how="left")
    has_own = own["alpha"].notna().to_numpy()
    alpha = np.where(has_own, own["alpha"], pooled["alpha"])
    beta = np.where(has_own, own["beta"], pooled["beta"])
    d = sbg.derl(alpha, beta, customers["periods_survived"].to_numpy(float) + 1, discount)
    basis = np.where(has_own, "cohort", np.where(np.isnan(alpha), "none", "pooled"))
    return customers.assign(derl=d, value=customers["revenue_per_period"].to_numpy(float) * d,
                            basis=basis)
