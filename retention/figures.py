"""The classic figures per period `[p0, p1)`, exactly as definitions.md (Retention figures) fixes
them, so every report, notebook and test counts the same way.

- Active at t: a run with `run_start < t < churn` (runs from `features.observations.runs`; a
  reactivation is a new run, so the return counts in N of the period it happens in).
- S = active at p0, E = active at p1, N = runs started in [p0, p1), lost = S + N - E.
- `crr` = (E - N) / S and `churn_rate` = lost / S (so crr + churn_rate = 1; lost includes new
  customers who left within the period); `churn_start` = (customers of S not active at p1) / S
  counts only those present at p0. All three are fractions (x 100 for percent) and empty (NaN)
  when S = 0.
- Revenue = fees recognised evenly over their period's days + top-ups on their day.
  NRR = revenue in the period from the customers active at p0 / their revenue in the period
  before; expansion, contraction and churned revenue are its parts.
- NPS = % promoters (9-10) - % detractors (0-6) of the answers dated in the period.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.observations import as_seen

FAR = np.iinfo(np.int64).max // 4  # "never": a churn date of an open-ended run


def crr(S, N, E):
    """Customer retention rate (E - N) / S as a fraction; NaN where S = 0 (nothing to retain)."""
    S, N, E = (np.asarray(x, dtype=float) for x in (S, N, E))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(S > 0, (E - N) / np.where(S > 0, S, 1), np.nan)


def churn_rate(S, N, E):
    """Churn rate lost / S with lost = S + N - E (new customers who left included), a fraction;
    NaN where S = 0. crr + churn_rate = 1 (seed 001)."""
    S, N, E = (np.asarray(x, dtype=float) for x in (S, N, E))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(S > 0, (S + N - E) / np.where(S > 0, S, 1), np.nan)


def days(values, fill: int | None = None) -> np.ndarray:
    """Dates or timestamps as whole days since 1970 (a timestamp falls on its day); NaT becomes
    `fill` (which must then be given)."""
    arr = pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[s]").astype("datetime64[D]")
    out = arr.astype(np.int64)
    nat = np.isnat(arr)
    if nat.any():
        if fill is None:
            raise ValueError("missing dates")
        out = np.where(nat, fill, out)
    return out


def _bounds(periods_: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return days(periods_["start"]), days(periods_["end"])


def counts(periods_: pd.DataFrame, runs_: pd.DataFrame) -> pd.DataFrame:
    """S, N, E, lost, lost_of_start (customers of S not active at p1) per period."""
    p0, p1 = _bounds(periods_)
    start = days(runs_["run_start"])
    churn = days(runs_["churn"], fill=FAR)
    rows = []
    for a, b in zip(p0, p1, strict=True):
        at_start = (start < a) & (a < churn)
        S = int(at_start.sum())
        E = int(((start < b) & (b < churn)).sum())
        N = int(((start >= a) & (start < b)).sum())
        gone = int((at_start & (churn <= b)).sum())
        rows.append((S, N, E, S + N - E, gone))
    return pd.DataFrame(rows, columns=["S", "N", "E", "lost", "lost_of_start"], index=periods_.index)


def period_revenue(subscriptions: pd.DataFrame, charges: pd.DataFrame, periods_: pd.DataFrame
                  ) -> pd.DataFrame:
    """Revenue per customer and period (long: customer_id, period (row position), revenue):
    each fee spread evenly over its period's days, each top-up on its day."""
    p0, p1 = _bounds(periods_)
    s0, s1 = days(subscriptions["period_start"]), days(subscriptions["period_end"])
    fee = subscriptions["fee"].to_numpy(dtype=float)
    per_day = fee / np.maximum(s1 - s0, 1)
    first = np.searchsorted(p1, s0, side="right")  # first period ending after the start
    last = np.searchsorted(p0, s1, side="left") - 1  # last period starting before the end
    k = np.maximum(last - first + 1, 0)
    row = np.repeat(np.arange(len(s0)), k)
    period = np.repeat(first, k) + (np.arange(len(row)) - np.repeat(np.cumsum(k) - k, k))
    overlap = np.minimum(s1[row], p1[period]) - np.maximum(s0[row], p0[period])
    fees = pd.DataFrame({"customer_id": subscriptions["customer_id"].to_numpy()[row],
                         "period": period, "revenue": per_day[row] * overlap})
    day = days(charges["ts"])
    at = np.searchsorted(p0, day, side="right") - 1
    inside = (at >= 0) & (day < p1[np.clip(at, 0, None)]) if len(p0) else np.zeros(len(day), bool)
    tops = pd.DataFrame({"customer_id": charges["customer_id"].to_numpy()[inside],
                         "period": at[inside], "revenue": charges["amount"].to_numpy(float)[inside]})
    both = pd.concat([fees, tops], ignore_index=True)
    return both.groupby(["customer_id", "period"], sort=True, as_index=False)["revenue"].sum()


def revenue_retention(periods_: pd.DataFrame, runs_: pd.DataFrame, subscriptions: pd.DataFrame,
                      charges: pd.DataFrame) -> pd.DataFrame:
    """Per period: revenue (everyone), start_revenue (the customers active at p0, in the period
    before), expansion, contraction (rises and falls of those still active at p1), churned_revenue
    (falls of those not active at p1) and nrr = (start + expansion - contraction - churned) /
    start. The first period of the table has no period before it: NaN."""
    rev = period_revenue(subscriptions, charges, periods_)
    p0, p1 = _bounds(periods_)
    start = days(runs_["run_start"])
    churn = days(runs_["churn"], fill=FAR)
    ids = runs_["customer_id"].to_numpy()
    total = rev.groupby("period")["revenue"].sum().reindex(range(len(p0)), fill_value=0.0)
    out = []
    for i, (a, b) in enumerate(zip(p0, p1, strict=True)):
        if i == 0:
            out.append((np.nan,) * 5)
            continue
        cohort = pd.unique(ids[(start < a) & (a < churn)])
        # a customer who left and came back within the period is still there at p1
        stays = pd.Series(np.isin(cohort, ids[(start < b) & (b < churn)]), index=cohort)
        now = rev[rev["period"] == i].set_index("customer_id")["revenue"]
        before = rev[rev["period"] == i - 1].set_index("customer_id")["revenue"]
        delta = now.reindex(cohort, fill_value=0.0) - before.reindex(cohort, fill_value=0.0)
        base = float(before.reindex(cohort, fill_value=0.0).sum())
        expansion = float(delta.clip(lower=0).sum())
        contraction = float((-delta).clip(lower=0)[stays.to_numpy()].sum())
        churned = float((-delta).clip(lower=0)[~stays.to_numpy()].sum())
        nrr = (base + expansion - contraction - churned) / base if base > 0 else np.nan
        out.append((base, expansion, contraction, churned, nrr))
    frame = pd.DataFrame(out, index=periods_.index, columns=[
        "start_revenue", "expansion", "contraction", "churned_revenue", "nrr"])
    frame.insert(0, "revenue", total.to_numpy())
    return frame


def net_promoter(periods_: pd.DataFrame, nps: pd.DataFrame | None) -> pd.DataFrame:
    """Per period: answers, promoters (9-10), passives (7-8), detractors (0-6) and
    nps = 100 * (promoters - detractors) / answers (NaN without answers)."""
    p0, p1 = _bounds(periods_)
    if nps is None:
        nps = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[s]"), "score": []})
    day = days(nps["ts"])
    score = nps["score"].to_numpy(dtype=float)
    rows = []
    for a, b in zip(p0, p1, strict=True):
        s = score[(day >= a) & (day < b)]
        pro, det = int((s >= 9).sum()), int((s <= 6).sum())
        n = len(s)
        rows.append((n, pro, n - pro - det, det, 100.0 * (pro - det) / n if n else np.nan))
    return pd.DataFrame(rows, index=periods_.index,
                        columns=["answers", "promoters", "passives", "detractors", "nps"])


def referrals(periods_: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """Customers who signed up in the period through someone's referral code."""
    p0, p1 = _bounds(periods_)
    if "referred_by" not in customers:
        return pd.Series(0, index=periods_.index, name="referrals")
    by = customers["referred_by"]
    referred = by.notna() & (by.astype(str).str.strip() != "")
    day = days(customers.loc[referred, "signup_date"])
    return pd.Series([int(((day >= a) & (day < b)).sum()) for a, b in zip(p0, p1, strict=True)],
                     index=periods_.index, name="referrals")


def pending_renewals(periods_: pd.DataFrame, subscriptions: pd.DataFrame, *, as_of: dt.date,
                     grace_days: int) -> pd.Series:
    """Renewals due in each period still pending at `as_of`: the period ended on or before
    as_of, its outcome not yet known there and its grace window not over (definitions.md:
    when an outcome becomes known). Their customers count as active, maybe wrongly."""
    seen = as_seen(subscriptions, view=as_of, grace_days=grace_days)
    following = seen.groupby("customer_id", sort=False)["period_start"].shift(-1)
    end = days(seen["period_end"])
    a = days([as_of])[0]
    pending = ((seen["outcome"] == "open").to_numpy() & following.isna().to_numpy()
               & (end <= a) & (end + grace_days >= a))
    p0, p1 = _bounds(periods_)
    e = end[pending]
    return pd.Series([int(((e >= s) & (e < t)).sum()) for s, t in zip(p0, p1, strict=True)],
                     index=periods_.index, name="pending_renewals")


def period_figures(periods_: pd.DataFrame, runs_: pd.DataFrame, subscriptions: pd.DataFrame,
                   charges: pd.DataFrame, customers: pd.DataFrame, nps: pd.DataFrame | None, *,
                   as_of: dt.date, grace_days: int) -> pd.DataFrame:
    """The whole per-period table: the period columns, counts, crr, churn_rate, churn_start,
    revenue and NRR parts, NPS parts, referrals, referrals_per_customer (referred signups / S),
    revenue_per_customer (revenue / the mean of S and E), pending_renewals and provisional
    (a renewal due in the period is still pending at as_of). Partial periods keep `partial`."""
    c = counts(periods_, runs_)
    out = pd.concat([periods_, c], axis=1)
    out["crr"] = crr(c["S"], c["N"], c["E"])
    out["churn_rate"] = churn_rate(c["S"], c["N"], c["E"])
    S = c["S"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["churn_start"] = np.where(S > 0, c["lost_of_start"] / np.where(S > 0, S, 1), np.nan)
        out = pd.concat([out, revenue_retention(periods_, runs_, subscriptions, charges),
                         net_promoter(periods_, nps), referrals(periods_, customers)], axis=1)
        out["referrals_per_customer"] = np.where(S > 0, out["referrals"] / np.where(S > 0, S, 1),
                                                 np.nan)
        mean = (c["S"] + c["E"]).to_numpy(float) / 2
        out["revenue_per_customer"] = np.where(mean > 0, out["revenue"] / np.where(mean > 0, mean, 1),
                                               np.nan)
    out["pending_renewals"] = pending_renewals(periods_, subscriptions, as_of=as_of,
                                               grace_days=grace_days)
    out["provisional"] = out["pending_renewals"] > 0
    return out


# What each column counts, for the report's labels (definitions.md: say which definition).
DEFINITIONS = {
    "S": "customers active at the period's start (run_start < p0 < churn date)",
    "N": "customers who signed up or were reactivated in [p0, p1)",
    "E": "customers active at the period's end",
    "lost": "S + N - E: everyone who left in the period, new customers included",
    "crr": "(E - N) / S",
    "churn_rate": "lost / S (crr + churn_rate = 100 %)",
    "churn_start": "customers of S not active at the end / S (only those present at the start)",
    "nrr": "revenue in the period from customers active at p0 / their revenue in the period before",
    "nps": "% promoters (9-10) - % detractors (0-6) among the period's answers",
    "referrals_per_customer": "signups through a referral code in the period / S",
    "revenue_per_customer": "revenue in the period / the mean of S and E",
    "provisional": "a renewal due in the period was still pending at the as-of date",
    "partial": "the period was not over at the as-of date",
}
