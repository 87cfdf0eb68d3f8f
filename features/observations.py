"""Observation points: which (customer, t) pairs exist, what kind they are, and their labels.

A point `(customer, t)` exists for a customer **at risk at t** (definitions.md): signed up
before t and, as far as an export taken on day t can tell, not yet gone. That includes a
renewal due on day t itself and a renewal still pending inside the grace window. Everything
here is decided as of a *view* day (the export's as-of date, or an earlier day for a cut of
it), by one rule for when an outcome becomes known:

- `cancelled` is known on its `period_end`; `lapsed` (exported, or derived from a period with
  no following one, or from a gap longer than `grace_days` before the next) on
  `period_end + grace_days`; `renewed` when the next period starts. An export taken on day V
  shows an outcome only if it became known before V; otherwise the period is open.

Points are counted from the start of each run (signup, or a reactivation), on a grid shifted
by a per-customer phase drawn from the customer id, so the grid does not fall on the same day
of the billing cycle for everyone; the early-life point stays at day `early_life_days`.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

NONE, YOUNG, EARLY_LIFE, ONGOING, SCORING = 0, 1, 2, 3, 4
KIND_NAMES = {YOUNG: "young", EARLY_LIFE: "early_life", ONGOING: "ongoing", SCORING: "scoring"}

CHURN_OUTCOMES = ("cancelled", "lapsed")


def phase(customer_ids, every_days: int) -> np.ndarray:
    """Each customer's grid phase in [0, every_days): SHA-256 of the id's text, so it is the
    same on every machine, for every export of the same ids, and in the simulator."""
    ids = pd.Series(customer_ids)
    uniq = pd.unique(ids)
    table = {u: int.from_bytes(hashlib.sha256(str(u).encode()).digest()[:8], "big") % every_days
             for u in uniq}
    return ids.map(table).to_numpy(dtype=np.int64)


def grid_kind(age_days, phase_days, *, every_days: int, min_tenure_days: int,
              early_life_days: int, grace_days: int, reactivated=False) -> np.ndarray:
    """Kind code of the grid point at `age_days` into a run, or NONE if it is off-grid.

    Young points every `every_days` from `min_tenure_days + phase` up to (not including) the
    early-life day; the early-life point itself; ongoing points every `every_days` from
    `early_life_days + phase` (after the early-life day). A reactivated run (not a customer's
    first) has no point in its first `grace_days` days: a customer who returns while an old
    run's lapse is still pending shows one continuous run until the lapse is known, so a point
    there would change once a later export knows it (definitions.md).
    """
    age = np.asarray(age_days)
    ph = np.asarray(phase_days)
    young = ((age >= min_tenure_days + ph) & (age < early_life_days)
             & ((age - min_tenure_days - ph) % every_days == 0))
    early = age == early_life_days
    ongoing = (age > early_life_days) & ((age - early_life_days - ph) % every_days == 0)
    shape = np.broadcast(age, ph, np.asarray(reactivated)).shape
    kind = np.full(shape, NONE, dtype=np.int8)
    kind[np.broadcast_to(young, shape)] = YOUNG
    kind[np.broadcast_to(early, shape)] = EARLY_LIFE
    kind[np.broadcast_to(ongoing, shape)] = ONGOING
    kind[np.broadcast_to(np.asarray(reactivated, dtype=bool) & (age < grace_days), shape)] = NONE
    return kind


def as_seen(subscriptions: pd.DataFrame, *, view: dt.date, grace_days: int) -> pd.DataFrame:
    """The periods an export taken on day `view` holds (period_start < view), each outcome
    replaced by 'open' where it was not yet known before `view`."""
    v = pd.Timestamp(view)
    grace = pd.Timedelta(days=grace_days)
    subs = subscriptions[subscriptions["period_start"] < v]
    subs = subs.sort_values(["customer_id", "period_start"], kind="stable")
    following = subs.groupby("customer_id", sort=False)["period_start"].shift(-1)
    known = np.select(
        [subs["outcome"] == "cancelled", subs["outcome"] == "lapsed",
         subs["outcome"] == "renewed"],
        [subs["period_end"] < v, subs["period_end"] + grace < v, following.notna()],
        default=False)
    return subs.assign(outcome=subs["outcome"].where(known, "open")).reset_index(drop=True)


def runs(customers: pd.DataFrame, subscriptions: pd.DataFrame, *, view: dt.date,
         grace_days: int) -> pd.DataFrame:
    """Runs as an export taken on day `view` shows them: one per customer, plus one per
    reactivation.

    A period ends its run with a churn at its `period_end` when its outcome is cancelled or
    lapsed (as known at `view`), when it has no following period and `period_end + grace_days
    < view` (a derived lapse), or when the next period starts more than `grace_days` after it
    (a gap: churn, then a reactivation). Columns: customer_id, run, run_start, churn (the churn
    date, NaT while none), last_at_risk (the last day the run is at risk: the churn date for a
    cancellation, churn + grace_days for a lapse; NaT while open-ended), signup_date.
    """
    v = pd.Timestamp(view)
    grace = pd.Timedelta(days=grace_days)
    subs = as_seen(subscriptions, view=view, grace_days=grace_days)
    following = subs.groupby("customer_id", sort=False)["period_start"].shift(-1)
    no_next = following.isna()
    lapse = (
        (subs["outcome"] == "lapsed")
        | (no_next & (subs["outcome"] != "cancelled") & (subs["period_end"] + grace < v))
        | (~no_next & (following > subs["period_end"] + grace))
    )
    cancel = subs["outcome"] == "cancelled"
    churn = cancel | lapse
    churns = churn.astype("int64")
    run = churns.groupby(subs["customer_id"], sort=False).cumsum() - churns
    periods = subs.assign(
        run=run, churn=subs["period_end"].where(churn),
        last_at_risk=subs["period_end"].where(cancel, subs["period_end"] + grace).where(churn))
    by_run = periods.groupby(["customer_id", "run"], sort=True).agg(
        run_start=("period_start", "min"), churn=("churn", "max"),
        last_at_risk=("last_at_risk", "max")).reset_index()
    signup = customers.loc[customers["signup_date"] < v, ["customer_id", "signup_date"]]
    out = signup.merge(by_run, on="customer_id", how="left")
    first = out["run"].isna() | (out["run"] == 0)
    out["run"] = out["run"].fillna(0).astype("int64")
    out["run_start"] = out["run_start"].where(~first, out["signup_date"])
    return out.sort_values(["customer_id", "run"], kind="stable").reset_index(drop=True)


def at_risk(runs_: pd.DataFrame, day: dt.date) -> pd.Series:
    """Which runs are at risk on `day`: started before it, not yet shown to be gone."""
    t = pd.Timestamp(day)
    return (runs_["run_start"] < t) & (runs_["last_at_risk"].isna()
                                       | (runs_["last_at_risk"] >= t))


def _one_per_day(points_: pd.DataFrame) -> pd.DataFrame:
    """One point per customer and day: where a pending old run and a new run (a reactivation
    inside the grace window) both have one, the new run's, which is what an export taken that
    day shows once the lapse is known. Only scoring points meet so: on the grid a reactivated
    run has no point in its first grace_days days."""
    points_ = points_.sort_values(["customer_id", "t", "run"], kind="stable")
    return points_.drop_duplicates(["customer_id", "t"], keep="last")


def points(runs_: pd.DataFrame, *, as_of: dt.date, every_days: int, min_tenure_days: int,
           early_life_days: int, grace_days: int) -> pd.DataFrame:
    """Grid points (young, early-life, ongoing) of every run while it is at risk, strictly
    before the as-of date, plus a scoring point at the as-of date for every run at risk then."""
    a = pd.Timestamp(as_of)
    start = runs_["run_start"].to_numpy(dtype="datetime64[D]")
    last = runs_["last_at_risk"].fillna(a - pd.Timedelta(days=1)).clip(
        upper=a - pd.Timedelta(days=1)).to_numpy(dtype="datetime64[D]")
    span = (last - start).astype(np.int64)  # the last grid age: t <= last_at_risk, t < as_of
    ph = phase(runs_["customer_id"], every_days)
    again = runs_["run"].to_numpy() > 0
    parts = []
    top = int(span.max()) if len(span) else 0
    for p, reactivated in sorted(set(zip(ph.tolist(), again.tolist(), strict=True))):
        rows = np.flatnonzero((ph == p) & (again == reactivated))
        ages = np.arange(1, max(top, 1) + 1)
        kinds = grid_kind(ages, p, every_days=every_days, min_tenure_days=min_tenure_days,
                          early_life_days=early_life_days, grace_days=grace_days,
                          reactivated=reactivated)
        ages, kinds = ages[kinds != NONE], kinds[kinds != NONE]
        count = np.searchsorted(ages, span[rows], side="right")
        row = np.repeat(rows, count)
        within = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
        parts.append(pd.DataFrame({
            "customer_id": runs_["customer_id"].to_numpy()[row],
            "t": start[row] + ages[within].astype("timedelta64[D]"),
            "kind": np.array([KIND_NAMES[k] for k in (YOUNG, EARLY_LIFE, ONGOING)],
                             dtype=object)[kinds[within] - 1],
            "run": runs_["run"].to_numpy()[row],
            "run_start": start[row],
        }))
    grid = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["customer_id", "t", "kind", "run", "run_start"])
    out = pd.concat([grid, scoring_points(runs_, day=as_of)[grid.columns]], ignore_index=True)
    out["t"] = out["t"].astype("datetime64[s]")
    out["run_start"] = out["run_start"].astype("datetime64[s]")
    return _one_per_day(out).reset_index(drop=True)


def scoring_points(runs_: pd.DataFrame, *, day: dt.date) -> pd.DataFrame:
    """One point on `day` for every customer at risk then: what a (weekly) scoring on that day
    scores. `runs_` must be the runs as an export taken on `day` shows them (`runs(...,
    view=day)`), also when scoring the past from a later export."""
    pts = runs_.loc[at_risk(runs_, day), ["customer_id", "run", "run_start"]].assign(
        t=pd.Timestamp(day), kind="scoring")
    pts["t"] = pts["t"].astype("datetime64[s]")
    pts["run_start"] = pts["run_start"].astype("datetime64[s]")
    return _one_per_day(pts).reset_index(drop=True)


def label(points_: pd.DataFrame, runs_: pd.DataFrame, *, as_of: dt.date, horizon_days: int,
          grace_days: int) -> pd.Series:
    """1 if the run's churn date falls before t + horizon (in [t, t + horizon), or before t
    for a renewal pending at t that was refused), 0 if not, <NA> where censored.

    A point is labelled only if t + horizon + grace <= as_of: only then is every churn in the
    window already known in the export (lapses, derived or exported, included).
    """
    churn = points_[["customer_id", "run"]].merge(
        runs_[["customer_id", "run", "churn"]], on=["customer_id", "run"], how="left"
    )["churn"].set_axis(points_.index)
    horizon = pd.Timedelta(days=horizon_days)
    churned = churn.notna() & (churn < points_["t"] + horizon)
    known = points_["t"] + horizon + pd.Timedelta(days=grace_days) <= pd.Timestamp(as_of)
    return churned.astype("Int8").where(known)


def state(points_: pd.DataFrame, subscriptions: pd.DataFrame) -> pd.Series:
    """What a point's customer is doing at t, as an export taken on day t shows it:
    'renewal_due' (the latest period ends on t), 'pending' (it ended before t, the outcome not
    yet known), else 'in_period'."""
    subs = subscriptions[["customer_id", "period_start", "period_end"]].astype(
        {"period_start": "datetime64[s]", "period_end": "datetime64[s]"}).sort_values(
        ["period_start"], kind="stable")
    keys = points_[["customer_id", "t"]].astype({"t": "datetime64[s]"}).reset_index(
        ).sort_values("t", kind="stable")
    latest = pd.merge_asof(keys, subs, left_on="t", right_on="period_start", by="customer_id",
                           allow_exact_matches=False).set_index("index").reindex(points_.index)
    end = latest["period_end"]
    t = points_["t"].astype("datetime64[s]")
    return pd.Series(np.select([end == t, end < t],
                               ["renewal_due", "pending"], default="in_period"),
                     index=points_.index)
