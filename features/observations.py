"""Observation points: which (customer, t) pairs exist, and what kind they are.

Points are counted from the start of each active run (signup, or a reactivation), so
they fall on different calendar days for different customers (definitions.md).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

NONE, YOUNG, EARLY_LIFE, ONGOING, SCORING = 0, 1, 2, 3, 4
KIND_NAMES = {YOUNG: "young", EARLY_LIFE: "early_life", ONGOING: "ongoing", SCORING: "scoring"}


def grid_kind(
    age_days: np.ndarray, *, every_days: int, min_tenure_days: int, early_life_days: int
) -> np.ndarray:
    """Kind code of the grid point at `age_days` into an active run, or NONE if it is off-grid.

    Young points every `every_days` from `min_tenure_days` up to (not including) the early-life
    day; the early-life point itself; ongoing points every `every_days` after it.
    """
    age = np.asarray(age_days)
    young = (
        (age >= min_tenure_days)
        & (age < early_life_days)
        & ((age - min_tenure_days) % every_days == 0)
    )
    early = age == early_life_days
    ongoing = (age > early_life_days) & ((age - early_life_days) % every_days == 0)
    kind = np.full(age.shape, NONE, dtype=np.int8)
    kind[young] = YOUNG
    kind[early] = EARLY_LIFE
    kind[ongoing] = ONGOING
    return kind


CHURN_OUTCOMES = ("cancelled", "lapsed")
OPEN_OUTCOMES = ("renewed", "open")


def runs(
    customers: pd.DataFrame, subscriptions: pd.DataFrame, *, as_of: dt.date, grace_days: int
) -> pd.DataFrame:
    """Active runs: one per customer, plus one per reactivation (definitions.md).

    A run starts at signup (or, after a churn, at the next period's start) and ends at its
    churn date: the `period_end` of a cancelled or lapsed period, or of a renewed/open period
    with no following period once `period_end + grace_days <= as_of` (derived lapse).
    Columns: customer_id, run, run_start, run_end (NaT while open-ended), signup_date.
    """
    a = pd.Timestamp(as_of)
    subs = subscriptions.sort_values(["customer_id", "period_start"], kind="stable")
    following = subs.groupby("customer_id", sort=False)["period_start"].shift(-1)
    derived_lapse = (
        subs["outcome"].isin(OPEN_OUTCOMES)
        & following.isna()
        & (subs["period_end"] + pd.Timedelta(days=grace_days) <= a)
    )
    churn = subs["outcome"].isin(CHURN_OUTCOMES) | derived_lapse
    # a period belongs to the run numbered by the churns strictly before it
    churns = churn.astype("int64")
    run = churns.groupby(subs["customer_id"], sort=False).cumsum() - churns
    periods = subs.assign(run=run, churn_end=subs["period_end"].where(churn))
    by_run = periods.groupby(["customer_id", "run"], sort=True).agg(
        run_start=("period_start", "min"), run_end=("churn_end", "max")
    ).reset_index()
    signup = customers[["customer_id", "signup_date"]]
    out = signup.merge(by_run, on="customer_id", how="left")
    first = out["run"].isna() | (out["run"] == 0)
    out["run"] = out["run"].fillna(0).astype("int64")
    out["run_start"] = out["run_start"].where(~first, out["signup_date"])
    return out.sort_values(["customer_id", "run"], kind="stable").reset_index(drop=True)


def grid_offsets(max_age: int, *, every_days: int, min_tenure_days: int,
                 early_life_days: int) -> tuple[np.ndarray, np.ndarray]:
    """All grid ages (days into a run) up to `max_age`, with their kinds."""
    ages = np.arange(1, max(max_age, 1) + 1)
    kinds = grid_kind(ages, every_days=every_days, min_tenure_days=min_tenure_days,
                      early_life_days=early_life_days)
    keep = kinds != NONE
    return ages[keep], kinds[keep]


def points(runs_: pd.DataFrame, *, as_of: dt.date, every_days: int, min_tenure_days: int,
           early_life_days: int) -> pd.DataFrame:
    """Grid points (young, early-life, ongoing) of every run, strictly before the as-of date,
    plus a scoring point at the as-of date for every run active then."""
    a = pd.Timestamp(as_of)
    start = runs_["run_start"].to_numpy(dtype="datetime64[D]")
    end = runs_["run_end"].fillna(a).clip(upper=a).to_numpy(dtype="datetime64[D]")
    span = (end - start).astype(np.int64)  # grid t must be < run_end and < as_of
    ages, kinds = grid_offsets(int(span.max()) if len(span) else 0, every_days=every_days,
                               min_tenure_days=min_tenure_days, early_life_days=early_life_days)
    count = np.searchsorted(ages, span, side="left")
    row = np.repeat(np.arange(len(runs_)), count)
    within = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    grid = pd.DataFrame({
        "customer_id": runs_["customer_id"].to_numpy()[row],
        "t": start[row] + ages[within].astype("timedelta64[D]"),
        "kind": np.array([KIND_NAMES[k] for k in (YOUNG, EARLY_LIFE, ONGOING)],
                         dtype=object)[kinds[within] - 1],
        "run": runs_["run"].to_numpy()[row],
        "run_start": start[row],
    })
    active = (runs_["run_start"] < a) & (runs_["run_end"].isna() | (runs_["run_end"] > a))
    scoring = runs_.loc[active, ["customer_id", "run", "run_start"]].assign(t=a, kind="scoring")
    out = pd.concat([grid, scoring[grid.columns]], ignore_index=True)
    out["t"] = out["t"].astype("datetime64[s]")
    out["run_start"] = out["run_start"].astype("datetime64[s]")
    return out.sort_values(["customer_id", "t"], kind="stable").reset_index(drop=True)


def label(points_: pd.DataFrame, runs_: pd.DataFrame, *, as_of: dt.date, horizon_days: int,
          grace_days: int) -> pd.Series:
    """1 if the run's churn date falls in [t, t + horizon), 0 if not, <NA> where censored.

    A point is labelled only if t + horizon + grace <= as_of: only then would any churn in
    the window already show in the export (derived lapses included).
    """
    end = points_[["customer_id", "run"]].merge(
        runs_[["customer_id", "run", "run_end"]], on=["customer_id", "run"], how="left"
    )["run_end"].set_axis(points_.index)
    horizon = pd.Timedelta(days=horizon_days)
    churned = end.notna() & (end < points_["t"] + horizon)
    known = points_["t"] + horizon + pd.Timedelta(days=grace_days) <= pd.Timestamp(as_of)
    return churned.astype("Int8").where(known)
