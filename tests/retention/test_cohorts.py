"""Cohort curves (censored cells blank), per-clock sBG fits and the customer value's fallback."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features import observations as obs
from retention import cohorts, sbg
from retention.periods import periods

A = dt.date(2024, 4, 15)


def _world():
    """Two monthly-plan customers signed up in January (one leaves at its second renewal), one
    in March, and a yearly-plan customer in January."""
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "y"],
                              "signup_date": pd.to_datetime(["2024-01-05", "2024-01-10",
                                                             "2024-03-02", "2024-01-20"])})
    subs = pd.DataFrame([
        ("a", "2024-01-05", "2024-02-04", "renewed"), ("a", "2024-02-04", "2024-03-05", "renewed"),
        ("a", "2024-03-05", "2024-04-04", "renewed"), ("a", "2024-04-04", "2024-05-04", "open"),
        ("b", "2024-01-10", "2024-02-09", "renewed"), ("b", "2024-02-09", "2024-03-10", "cancelled"),
        ("c", "2024-03-02", "2024-04-01", "renewed"), ("c", "2024-04-01", "2024-05-01", "open"),
        ("y", "2024-01-20", "2025-01-20", "open"),
    ], columns=["customer_id", "period_start", "period_end", "outcome"]).astype(
        {"period_start": "datetime64[s]", "period_end": "datetime64[s]"}).assign(fee=10.0)
    runs = obs.runs(customers, subs, view=A, grace_days=14)
    return runs, subs, periods(dt.date(2024, 1, 5), A)


def test_plan_clocks():
    assert cohorts.plan_clock([28, 31, 30, 89, 92, 365, 366, 7]).tolist() == [30, 30, 30, 90, 90,
                                                                             365, 365, 30]


def test_curves_leave_censored_cells_blank():
    runs, _subs, months = _world()
    curves = cohorts.curves(runs, months)
    m = cohorts.curve_matrix(curves)
    assert m.index.tolist() == ["2024-01", "2024-03"]
    assert m.loc["2024-01", 0] == 1.0 and m.loc["2024-01", 1] == 1.0
    assert m.loc["2024-01", 2] == pytest.approx(2 / 3)  # b churned 10 March
    assert np.isnan(m.loc["2024-01", 3])  # April is not over at A: censored, not zero
    assert m.loc["2024-03", 0] == 1.0 and np.isnan(m.loc["2024-03", 1])
    cell = curves[(curves["cohort"] == "2024-01") & (curves["k"] == 3)].iloc[0]
    assert np.isnan(cell["active"]) and cell["customers"] == 3


def test_renewal_histories_split_by_clock_and_censor_the_open_renewal():
    runs, subs, months = _world()
    h = cohorts.renewal_histories(runs, subs, months, as_of=A, grace_days=14).set_index("customer_id")
    assert h.loc["a", ["period_days", "periods", "churned", "renewals"]].tolist() == [30, 4, False, 3]
    assert h.loc["b", ["churned", "renewals"]].tolist() == [True, 2]  # churned at renewal 2
    assert h.loc["y", ["period_days", "renewals"]].tolist() == [365, 0]
    assert h.loc["c", "cohort"] == "2024-03"


def _histories(survivors, cohort, clock=30):
    """Per-customer histories reproducing survivor counts s_0..s_T (censored at T)."""
    s = np.asarray(survivors)
    renewals = np.concatenate([np.repeat(np.arange(1, len(s)), s[:-1] - s[1:]),
                               np.full(s[-1], len(s) - 1)])
    churned = np.arange(len(renewals)) < s[0] - s[-1]
    return pd.DataFrame({"customer_id": [f"{cohort}-{i}" for i in range(len(renewals))],
                         "cohort": cohort, "period_days": clock, "periods": renewals + ~churned,
                         "churned": churned, "renewals": renewals})


REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


def test_fits_per_cohort_with_reasons_and_a_pooled_fallback():
    h = pd.concat([_histories(REGULAR, "2020-01"),
                   _histories([20, 15, 12, 10], "2020-02"),  # too small
                   _histories([500, 300], "2020-03")], ignore_index=True)  # too short
    fits = cohorts.fits(h, min_cohort_size=30, min_cohort_periods=3).set_index("cohort")
    assert fits.loc["2020-01", "alpha"] == pytest.approx(0.704, abs=1e-3)
    assert fits.loc["2020-01", "beta"] == pytest.approx(1.182, abs=1e-3)
    assert fits.loc["2020-01", "reason"] == ""
    assert fits.loc["2020-02", "reason"].startswith("too small") and np.isnan(fits.loc["2020-02", "alpha"])
    assert fits.loc["2020-03", "reason"].startswith("too short")
    assert fits.loc[cohorts.POOLED, "customers"] == 1520 and fits.loc[cohorts.POOLED, "reason"] == ""

    fits = fits.reset_index()
    own = cohorts.customer_value("2020-01", 30, 4, 50.0, fits, 0.10)
    assert own.basis == "cohort" and own.note == ""
    assert own.value == pytest.approx(50 * 5.894, abs=0.01)  # n = 5
    fallback = cohorts.customer_value("2020-02", 31, 0, 50.0, fits, 0.10)
    assert fallback.basis == "pooled" and "too small" in fallback.note
    pooled = fits[fits["cohort"] == cohorts.POOLED].iloc[0]
    assert fallback.derl == pytest.approx(float(sbg.derl(pooled["alpha"], pooled["beta"], 1, 0.10)))
    nothing = cohorts.customer_value("2020-01", 365, 0, 50.0, fits, 0.10)
    assert nothing.basis == "none" and np.isnan(nothing.value) and "365-day" in nothing.note

    frame = pd.DataFrame({"cohort": ["2020-01", "2020-02"], "period_days": [30, 30],
                          "periods_survived": [4, 0], "revenue_per_period": [50.0, 50.0]})
    values = cohorts.customer_values(frame, fits, 0.10)
    assert values["basis"].tolist() == ["cohort", "pooled"]
    assert values["value"].tolist() == pytest.approx([own.value, fallback.value])

    proj = cohorts.projection(fits, 5)
    regular = proj[proj["cohort"] == "2020-01"]
    assert regular["t"].max() == 12 and regular["projected"].sum() == 5
    assert np.round(1000 * regular[regular["projected"]]["survival"], 1).tolist() == [
        220.1, 204.4, 191.2, 179.9, 170.0]


def test_a_change_of_plan_clock_censors_the_history_on_the_first_clock():
    """Monthly for two periods, then a quarterly plan: two renewals survived on the 30-day
    clock, censored there, never counted as 30-day renewals afterwards."""
    customers = pd.DataFrame({"customer_id": ["q"], "signup_date": pd.to_datetime(["2024-01-05"])})
    subs = pd.DataFrame([
        ("q", "2024-01-05", "2024-02-04", "renewed"), ("q", "2024-02-04", "2024-03-05", "renewed"),
        ("q", "2024-03-05", "2024-06-03", "renewed"), ("q", "2024-06-03", "2024-09-01", "cancelled"),
    ], columns=["customer_id", "period_start", "period_end", "outcome"]).astype(
        {"period_start": "datetime64[s]", "period_end": "datetime64[s]"}).assign(fee=10.0)
    view = dt.date(2024, 12, 1)
    runs = obs.runs(customers, subs, view=view, grace_days=14)
    h = cohorts.renewal_histories(runs, subs, periods(dt.date(2024, 1, 5), view), as_of=view,
                                  grace_days=14).set_index("customer_id")
    assert h.loc["q", ["period_days", "periods", "churned", "renewals"]].tolist() == [
        30, 2, False, 2]
