"""Per signup cohort: did the week's scores count the churners right, and did the cohort
projections? The model's probabilities summed, against the sBG and Kaplan-Meier carried forward.

For one scored week (the customers at risk on `as_of`, each with its churn probability) and
what happened to them in the next `days` (the model's label: a churn date in
[as_of, as_of + days), or a renewal pending on as_of that was refused), each signup cohort of
the retention report (retention.cohorts.cohort_of, monthly or the report's period, in the
business calendar) gets the realised churners and three forecasts of them:

- **model**: the sum of the scored customers' churn probabilities.
- **sBG**: for each customer, P(churn at one of the renewals falling in the window | the
  renewals already survived) = 1 - S(n + m) / S(n) (retention.sbg.survival), n the renewals
  survived in the current run, m the renewals due in the window, S the sBG fit of the
  customer's signup cohort and plan clock made from the export as it was on `as_of`
  (scoring.value.cohort_fits: the weekly scoring's own fits). The fallbacks are the scoring's
  value's (scoring.value): the pooled fit of the clock where the cohort has none, a constant
  renewal share r (1 - r^m) where the clock has none, else no estimate. `fit_*` count which.
- **Kaplan-Meier carried forward**: the same ratio with S the Kaplan-Meier curve of renewals
  survived (retention.holdout.km_at) over the same renewal histories the sBG was fitted on
  (the cohort's on its clock; the clock's over all cohorts where the sBG fell back to the
  pooled fit or the renewal share), kept flat after its last churn with at least
  KM_MIN_AT_RISK histories at risk: no churn is forecast at a renewal later than any the data
  saw with that many customers (the report's naive "nothing changes" forecast; without the
  floor, one churner alone at a cohort's longest renewal drops the curve to 0 and forecasts
  that every customer there leaves).

Renewals in the window: the current period's end, and every period length after it, before
as_of + days (a renewal pending on as_of is the first of them); the periods after it are taken
to be as long as the current one. A customer with none (a yearly plan renewing later) gets 0
from the sBG and Kaplan-Meier, whatever the basis; one with a renewal in the window and no
basis at all (no renewal ever faced on its clock) is left out of both sums and counted in
`fit_none`. Nothing after `as_of` is read: `customers` and `subscriptions` may be the full
export or its cut at `as_of` (records.cut), with the same result.

Renewals survived count the current run (a reactivation starts again at 0, like the renewal
histories), the cohort is the customer's signup cohort, and the clock that of the current
period (scoring.value.current_period_days): the keys the weekly scoring values customers by.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features import observations as obs
from retention import cohorts, sbg
from retention.config import ReportConfig
from retention.holdout import km_at
from scoring import value

ALL = cohorts.POOLED  # the cohort label of the row over every cohort
# Kaplan-Meier is read only where this many renewal histories are at risk, flat after (the
# convention of truncating a survival curve's tail where fewer than 10 remain)
KM_MIN_AT_RISK = 10
BASES = ("cohort", "pooled", "renewal share", "none")
COLUMNS = ("cohort", "customers", "renewing", "churned", "model_expected", "sbg_expected",
           "km_expected", "model_error", "sbg_error", "km_error", "fit_cohort", "fit_pooled",
           "fit_renewal_share", "fit_none")


def _current_runs(customer_ids: pd.Series, subscriptions: pd.DataFrame, runs_: pd.DataFrame, *,
                  as_of: dt.date, grace_days: int) -> pd.DataFrame:
    """Per customer (in the order given): the periods of the run at risk on `as_of` that an
    export of that day shows, and the latest one's end (the next renewal, or the pending one)."""
    points = obs.scoring_points(runs_, day=as_of)[["customer_id", "run_start"]]
    key = pd.DataFrame({"customer_id": customer_ids.to_numpy()}).merge(
        points, on="customer_id", how="left")
    missing = key["run_start"].isna()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} scored customers are not at risk on {as_of} in "
                         f"these tables (e.g. {key.loc[missing, 'customer_id'].iat[0]!r})")
    seen = obs.as_seen(subscriptions, view=as_of, grace_days=grace_days)
    mine = seen[["customer_id", "period_start", "period_end"]].merge(
        key[["customer_id", "run_start"]], on="customer_id")
    mine = mine[mine["period_start"] >= mine["run_start"]]
    per = mine.sort_values(["customer_id", "period_start"], kind="stable").groupby(
        "customer_id", sort=False).agg(periods=("period_start", "size"),
                                       next_renewal=("period_end", "last"))
    out = key[["customer_id"]].merge(per.reset_index(), on="customer_id", how="left")
    out["periods"] = out["periods"].fillna(0).astype("int64")
    out["next_renewal"] = out["next_renewal"].astype("datetime64[s]")
    return out


def _renewals_in_window(next_renewal: pd.Series, period_days: np.ndarray, *, as_of: dt.date,
                        days: int) -> np.ndarray:
    """How many of the renewals next, next + L, next + 2L, ... fall before as_of + days."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=days)
    gap = (end - next_renewal).dt.days.to_numpy(dtype=float)  # NaN: no period yet
    length = np.maximum(period_days, 1.0)
    m = np.where(gap > 0, np.ceil(np.where(gap > 0, gap, 0.0) / length), 0.0)
    return m.astype(np.int64)


def _conditional(survival_n: np.ndarray, survival_nm: np.ndarray) -> np.ndarray:
    """1 - S(n + m) / S(n); 0 where S(n) is 0 (a curve carried flat at 0: nothing left to
    lose)."""
    ok = survival_n > 0
    return np.where(ok, 1.0 - survival_nm / np.where(ok, survival_n, 1.0), 0.0)


def customer_probabilities(customer_ids, customers: pd.DataFrame, subscriptions: pd.DataFrame,
                           *, as_of: dt.date, days: int, calendar: str, grace_days: int,
                           config: ReportConfig, runs: pd.DataFrame | None = None
                           ) -> pd.DataFrame:
    """Per customer at risk on `as_of` (in the order given): cohort, period_days (the plan
    clock), renewals_survived, next_renewal (the current period's end; before as_of when the
    renewal is pending), renewals_in_window, basis (which sBG: cohort, pooled, renewal share,
    none) and the probability of churning within `days` under the sBG (p_sbg) and under
    Kaplan-Meier carried forward (p_km); NaN where neither has a basis.

    `runs`: features.observations.runs(customers, subscriptions, view=as_of, ...) if the caller
    has it (computed here otherwise). Raises ValueError for a customer not at risk on `as_of`."""
    return _probabilities(customer_ids, customers, subscriptions, as_of=as_of, days=days,
                          calendar=calendar, grace_days=grace_days, config=config, runs=runs)[0]


def _probabilities(customer_ids, customers: pd.DataFrame, subscriptions: pd.DataFrame, *,
                   as_of: dt.date, days: int, calendar: str, grace_days: int,
                   config: ReportConfig, runs: pd.DataFrame | None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """customer_probabilities, and the report's periods that name the cohorts."""
    ids = pd.Series(np.asarray(customer_ids))
    if ids.duplicated().any():
        raise ValueError("a customer is scored twice: one row per customer at risk expected")
    if runs is None:
        runs = obs.runs(customers, subscriptions, view=as_of, grace_days=grace_days)
    fits, hist, per = value.cohort_fits(customers, subscriptions, runs, as_of=as_of,
                                        calendar=calendar, grace_days=grace_days, config=config)
    current = _current_runs(ids, subscriptions, runs, as_of=as_of, grace_days=grace_days)
    frame = pd.DataFrame({"customer_id": ids.to_numpy(),
                          "t": pd.Timestamp(as_of)}).astype({"t": "datetime64[s]"})
    length = value.current_period_days(frame, subscriptions).fillna(30.0).to_numpy(float)
    clock = cohorts.plan_clock(length)
    n = np.maximum(current["periods"].to_numpy(np.int64) - 1, 0)
    m = _renewals_in_window(current["next_renewal"], length, as_of=as_of, days=days)
    cohort = cohorts.cohort_of(value.signup_dates(frame, customers), per)
    # which sBG: the scoring value's own choice (cohort, else pooled), then its renewal share
    basis = cohorts.customer_values(pd.DataFrame({
        "cohort": cohort, "period_days": clock, "periods_survived": n.astype(float),
        "revenue_per_period": 0.0}), fits, config.discount_rate)["basis"].to_numpy(object)
    share = value.kept_share(hist)
    r = np.array([share.get(int(c), np.nan) for c in clock])
    basis = np.where((basis == "none") & np.isfinite(r), "renewal share", basis)
    fitted = fits[fits["reason"] == ""]
    params = pd.DataFrame({"cohort": np.where(basis == "cohort", cohort, ALL),
                           "period_days": clock}).merge(
        fitted[["cohort", "period_days", "alpha", "beta"]], on=["cohort", "period_days"],
        how="left")
    a, b = params["alpha"].to_numpy(float), params["beta"].to_numpy(float)
    p_sbg = np.full(len(ids), np.nan)
    p_km = np.full(len(ids), np.nan)
    fit = np.isin(basis, ("cohort", "pooled"))
    p_sbg[fit] = _conditional(sbg.survival(a[fit], b[fit], n[fit]),
                              sbg.survival(a[fit], b[fit], n[fit] + m[fit]))
    geometric = basis == "renewal share"
    p_sbg[geometric] = 1.0 - r[geometric] ** m[geometric]
    # Kaplan-Meier on the histories the sBG used: the cohort's on its clock, else the clock's
    km_cohort = np.where(basis == "cohort", cohort, ALL)
    known = basis != "none"
    for c, k in sorted(set(zip(km_cohort[known], clock[known], strict=True))):
        rows = (km_cohort == c) & (clock == k) & known
        h = hist[hist["period_days"] == k]
        if c != ALL:
            h = h[h["cohort"] == c]
        at = km_at(h["renewals"], h["churned"], np.concatenate([n[rows], n[rows] + m[rows]]),
                   min_at_risk=KM_MIN_AT_RISK)
        p_km[rows] = _conditional(at[:rows.sum()], at[rows.sum():])
    none = m == 0  # no renewal in the window: nobody can churn, whatever the basis
    p_sbg[none] = 0.0
    p_km[none] = 0.0
    return pd.DataFrame({"customer_id": ids.to_numpy(), "cohort": cohort,
                         "period_days": clock, "renewals_survived": n,
                         "next_renewal": current["next_renewal"].to_numpy(),
                         "renewals_in_window": m, "basis": basis, "p_sbg": p_sbg,
                         "p_km": p_km}), per


def table(per_customer: pd.DataFrame, probability, churned, order) -> pd.DataFrame:
    """One row per cohort (in `order`, those with customers) and the ALL row: customers,
    renewing (with a renewal in the window), realised churners, each method's expected
    churners and error (expected - realised), and which sBG basis the renewing customers got
    (fit_*: they add up to renewing; fit_none are left out of the sBG and KM sums)."""
    f = per_customer.assign(p_model=np.asarray(probability, dtype=float),
                            churned=np.asarray(churned, dtype=float))
    f["renewing"] = f["renewals_in_window"] > 0

    def row(label: str, g: pd.DataFrame) -> dict:
        k = float(g["churned"].sum())
        out = {"cohort": label, "customers": len(g), "renewing": int(g["renewing"].sum()),
               "churned": int(k), "model_expected": float(g["p_model"].sum()),
               "sbg_expected": float(np.nansum(g["p_sbg"])),
               "km_expected": float(np.nansum(g["p_km"]))}
        for name in ("model", "sbg", "km"):
            out[f"{name}_error"] = out[f"{name}_expected"] - k
        renewing = g[g["renewing"]]
        for basis in BASES:
            out[f"fit_{basis.replace(' ', '_')}"] = int((renewing["basis"] == basis).sum())
        return out

    groups = dict(tuple(f.groupby("cohort", sort=False)))
    rows = [row(c, groups[c]) for c in order if c in groups]
    rows.append(row(ALL, f))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare(scores: pd.DataFrame, customers: pd.DataFrame, subscriptions: pd.DataFrame,
            churned, *, as_of: dt.date, days: int, calendar: str, grace_days: int,
            config: ReportConfig, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per signup cohort and over all (cohort = ALL, last): the churners realised within `days`
    of `as_of` against those the model (its probabilities summed), the sBG and Kaplan-Meier
    carried forward (both fitted on the export as it was on `as_of`) expected; see the module.

    `scores`: one week's scores (customer_id, churn_probability; one row per customer at risk
    on `as_of`); `churned`: 1/0 per row of `scores`, the model's label with horizon `days`
    (features.observations.label on the full export); `customers`, `subscriptions`: the export
    (the full one or its cut at `as_of`: only what was known before `as_of` is used);
    `grace_days` the label's; `calendar` and `config` the report's (cohorts and fits)."""
    y = np.asarray(churned, dtype=float)
    if len(y) != len(scores):
        raise ValueError(f"{len(y)} outcomes for {len(scores)} scored customers")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("churned must be 0 or 1 for every scored customer (an outcome not "
                         f"known yet?): {int(np.isnan(y).sum())} missing")
    per_customer, per = _probabilities(
        scores["customer_id"], customers, subscriptions, as_of=as_of, days=days,
        calendar=calendar, grace_days=grace_days, config=config, runs=runs)
    return table(per_customer, scores["churn_probability"], y, per["label"].tolist())
