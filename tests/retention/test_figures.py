"""The per-period figures as definitions.md fixes them, on hand-built tables with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from common.errors import ConfigError
from features import observations as obs
from retention import figures as fig
from retention.config import ReportConfig
from retention.periods import periods

T = pd.Timestamp


def _runs(*rows):
    """(customer_id, run_start, churn or None); signup_date = the first run's start."""
    frame = pd.DataFrame(rows, columns=["customer_id", "run_start", "churn"])
    frame["run"] = frame.groupby("customer_id").cumcount()
    frame["signup_date"] = frame.groupby("customer_id")["run_start"].transform("min")
    return frame.astype({"run_start": "datetime64[s]", "churn": "datetime64[s]",
                         "signup_date": "datetime64[s]"})


def _subs(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "period_start", "period_end", "fee", "outcome"]
                        ).astype({"period_start": "datetime64[s]", "period_end": "datetime64[s]"})


def _charges(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).astype({"ts": "datetime64[s]"})


JAN = periods(dt.date(2025, 1, 1), dt.date(2025, 2, 1))  # one complete Gregorian month


@pytest.mark.parametrize("S, N, lost, E, crr, churn", [
    (1000, 200, 250, 950, 75.00, 25.00),
    (20, 5, 1, 24, 95.00, 5.00),
    (44, 12, 13, 43, 70.45, 29.55),
])
def test_worked_examples(S, N, lost, E, crr, churn):
    assert lost == S + N - E
    assert round(100 * float(fig.crr(S, N, E)), 2) == crr
    assert round(100 * float(fig.churn_rate(S, N, E)), 2) == churn


@pytest.mark.parametrize("S, N, lost, E, left_of_start", [
    (1000, 200, 250, 950, 240), (20, 5, 1, 24, 1), (44, 12, 13, 43, 10)])
def test_worked_examples_from_customers(S, N, lost, E, left_of_start):
    """Customers built to give the documents' S, N, E for January: the counts come out."""
    rows = [(f"s{i}", "2024-12-01", "2025-01-15" if i < left_of_start else None) for i in range(S)]
    rows += [(f"n{i}", "2025-01-10", "2025-01-20" if i < lost - left_of_start else None)
             for i in range(N)]
    rows += [("late", "2025-02-01", None)]  # signs up on p1: the next month's N, not January's
    out = fig.counts(JAN, _runs(*rows)).iloc[0]
    assert (out["S"], out["N"], out["E"], out["lost"]) == (S, N, E, lost)
    assert out["lost_of_start"] == left_of_start


def test_active_is_strict_at_both_ends():
    """Signing up on p0 is N, not S; churning on p1 is lost in the period that ends at p1."""
    runs = _runs(("a", "2025-01-01", None), ("b", "2024-12-01", "2025-02-01"),
                 ("c", "2024-12-01", "2025-01-01"))  # c churned at p0: not in S
    out = fig.counts(JAN, runs).iloc[0]
    assert (out["S"], out["N"], out["E"], out["lost"]) == (1, 1, 1, 1)


def test_zero_start_gives_an_empty_crr_not_an_error():
    runs = _runs(("a", "2025-01-05", None))
    table = fig.period_figures(JAN, runs, _subs(), _charges(), runs[["customer_id", "signup_date"]],
                               None, as_of=dt.date(2025, 2, 1), grace_days=14)
    row = table.iloc[0]
    assert (row["S"], row["N"], row["E"]) == (0, 1, 1)
    assert np.isnan(row["crr"]) and np.isnan(row["churn_rate"]) and np.isnan(row["churn_start"])
    assert np.isnan(fig.crr(0, 3, 2))


def test_a_reactivated_customer_counts_in_N_of_the_month_they_return():
    customers = pd.DataFrame({"customer_id": ["a", "b"],
                              "signup_date": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    subs = _subs(("a", "2024-01-01", "2024-02-01", 10, "renewed"),
                 ("a", "2024-02-01", "2024-03-01", 10, "cancelled"),  # churn 2024-03-01
                 ("a", "2024-04-10", "2024-05-10", 10, "open"),       # back on 10 April
                 ("b", "2024-01-01", "2024-12-01", 10, "open"))
    runs = obs.runs(customers, subs, view=dt.date(2024, 5, 1), grace_days=14)
    months = periods(dt.date(2024, 1, 1), dt.date(2024, 5, 1))
    c = fig.counts(months, runs).set_index(months["label"])
    assert c.loc["2024-02", ["S", "N", "E", "lost"]].tolist() == [2, 0, 1, 1]  # gone at 1 March
    assert c.loc["2024-03", ["S", "N", "E"]].tolist() == [1, 0, 1]
    assert c.loc["2024-04", ["S", "N", "E", "lost"]].tolist() == [1, 1, 2, 0]  # a returns: N


def test_revenue_spreads_fees_over_their_days_and_books_top_ups_on_their_day():
    months = periods(dt.date(2024, 1, 1), dt.date(2024, 4, 1))
    subs = _subs(("q", "2024-01-01", "2024-03-31", 900.0, "open"))  # 90 days: 10 a day
    charges = _charges(("q", "2024-02-29 23:59:00", 7.0), ("q", "2024-03-01 00:00:00", 5.0))
    rev = fig.period_revenue(subs, charges, months).set_index("period")["revenue"]
    assert rev.to_dict() == pytest.approx({0: 310.0, 1: 290.0 + 7.0, 2: 300.0 + 5.0})


def test_nrr_with_expansion_contraction_and_churn():
    months = periods(dt.date(2024, 1, 1), dt.date(2024, 3, 1))  # Jan, Feb
    runs = _runs(("up", "2023-12-01", None), ("down", "2023-12-01", None),
                 ("gone", "2023-12-01", "2024-02-15"), ("new", "2024-02-05", None))
    subs = _subs(("up", "2024-01-01", "2024-02-01", 100.0, "renewed"),
                 ("up", "2024-02-01", "2024-03-01", 150.0, "open"),
                 ("down", "2024-01-01", "2024-02-01", 100.0, "renewed"),
                 ("down", "2024-02-01", "2024-03-01", 60.0, "open"),
                 ("gone", "2024-01-01", "2024-02-01", 100.0, "renewed"),
                 ("gone", "2024-02-01", "2024-02-15", 50.0, "cancelled"),
                 ("new", "2024-02-05", "2024-03-05", 999.0, "open"))  # not active at p0: left out
    charges = _charges(("up", "2024-02-10 12:00", 20.0))
    nrr = fig.revenue_retention(months, runs, subs, charges)
    feb = nrr.iloc[1]
    assert feb["start_revenue"] == pytest.approx(300.0)
    assert feb["expansion"] == pytest.approx(70.0)  # up: 150 + 20 - 100
    assert feb["contraction"] == pytest.approx(40.0)  # down: 100 - 60
    assert feb["churned_revenue"] == pytest.approx(50.0)  # gone: 100 - 50
    assert feb["nrr"] == pytest.approx(280.0 / 300.0)
    assert np.isnan(nrr.iloc[0]["nrr"])  # no period before the first
    assert nrr.iloc[0]["revenue"] == pytest.approx(300.0)


def test_nps_counts_and_score():
    months = periods(dt.date(2024, 1, 1), dt.date(2024, 4, 1))
    nps = pd.DataFrame({"customer_id": list("abcdefgh"), "score": [10, 9, 8, 7, 6, 0, 10, 3],
                        "ts": pd.to_datetime(["2024-01-02 10:00"] * 7 + ["2024-02-01 00:00"])})
    out = fig.net_promoter(months, nps)
    assert out.iloc[0][["answers", "promoters", "passives", "detractors"]].tolist() == [7, 3, 2, 2]
    assert out.iloc[0]["nps"] == pytest.approx(100 / 7)
    assert out.iloc[1]["nps"] == -100.0  # one detractor, on the first day of February
    assert out.iloc[2]["answers"] == 0 and np.isnan(out.iloc[2]["nps"])


def test_jalali_months_across_the_new_year():
    months = periods(dt.date(2025, 2, 1), dt.date(2025, 5, 1), calendar="jalali")
    assert months["label"].tolist() == ["Bahman 1403", "Esfand 1403", "Farvardin 1404",
                                        "Ordibehesht 1404"]
    esfand, farvardin = months.iloc[1], months.iloc[2]
    assert (esfand["start"], esfand["end"]) == (T("2025-02-19"), T("2025-03-21"))  # leap: 30 days
    assert (farvardin["start"], farvardin["end"]) == (T("2025-03-21"), T("2025-04-21"))
    assert months["partial"].tolist() == [False, False, False, True]
    common = periods(dt.date(2024, 3, 1), dt.date(2024, 4, 1), calendar="jalali")
    assert common["label"].tolist() == ["Esfand 1402", "Farvardin 1403"]
    assert common.iloc[0]["end"] - common.iloc[0]["start"] == pd.Timedelta(days=29)
    runs = _runs(("last_of_esfand", "2025-03-20", None), ("nowruz", "2025-03-21", None))
    c = fig.counts(months, runs)
    assert c["N"].tolist() == [0, 1, 1, 0]


def test_jalali_quarters_and_years():
    q = periods(dt.date(2025, 3, 1), dt.date(2025, 7, 1), period="quarter", calendar="jalali")
    assert q["label"].tolist() == ["Q4 1403", "Q1 1404", "Q2 1404"]
    assert q.iloc[1]["start"] == T("2025-03-21") and q.iloc[1]["end"] == T("2025-06-22")
    y = periods(dt.date(2025, 3, 1), dt.date(2025, 7, 1), period="year", calendar="jalali")
    assert y["label"].tolist() == ["1403", "1404"]
    g = periods(dt.date(2024, 11, 5), dt.date(2025, 1, 1), period="quarter")
    assert g["label"].tolist() == ["2024-Q4"] and not g["partial"].any()


def test_pending_renewal_makes_a_period_provisional():
    as_of = dt.date(2024, 3, 5)
    months = periods(dt.date(2024, 1, 1), as_of)
    customers = pd.DataFrame({"customer_id": ["p", "k"], "referred_by": [None, "P1"],
                              "signup_date": pd.to_datetime(["2024-01-01", "2024-01-03"])})
    subs = _subs(("p", "2024-01-01", "2024-02-28", 10.0, "open"),  # due 28 Feb, grace to 13 Mar
                 ("k", "2024-01-03", "2024-06-03", 10.0, "open"))
    runs = obs.runs(customers, subs, view=as_of, grace_days=14)
    table = fig.period_figures(months, runs, subs, _charges(), customers, None, as_of=as_of,
                               grace_days=14).set_index("label")
    assert table["provisional"].tolist() == [False, True, False]
    assert table["partial"].tolist() == [False, False, True]
    assert table.loc["2024-02", "E"] == 2  # counted as active, maybe wrongly: provisional
    assert table.loc["2024-01", "referrals"] == 1
    later = fig.pending_renewals(months, subs, as_of=dt.date(2024, 3, 20), grace_days=14)
    assert later.sum() == 0  # the grace is over: a known lapse, nothing pending


def test_config_ranges():
    assert ReportConfig().period == "month"
    for bad in (dict(period="week"), dict(discount_rate=-0.1), dict(horizon_periods=0),
                dict(min_cohort_size=1), dict(min_cohort_periods=1)):
        with pytest.raises(ConfigError):
            ReportConfig(**bad)
