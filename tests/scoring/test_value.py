"""A customer's value: own revenue per period x DERL of the cohort's sBG fit, with fallbacks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retention import sbg
from retention.periods import periods
from scoring.value import current_period_days, values

PER = periods(dt.date(2024, 1, 1), dt.date(2024, 4, 1))  # 2024-01 .. 2024-03


def _fits(rows):
    cols = ["cohort", "period_days", "customers", "periods_observed", "alpha", "beta",
            "log_likelihood", "reason"]
    return pd.DataFrame([r + (0.0, "") if r[4] == r[4] else r + (np.nan, "too small")
                         for r in rows], columns=cols)


def test_value_by_cohort_pooled_renewal_share_and_none():
    frame = pd.DataFrame({"fee": [100.0, 100.0, 300.0, 50.0], "charge_total": [90.0, 0, 0, 0],
                          "window_days": [90.0, 45, 90, 90], "periods_paid": [2.0, 1, 3, 1]})
    period_days = pd.Series([30.0, 31, 91, 365])
    signup = pd.Series(pd.to_datetime(["2024-01-10", "2024-02-03", "2024-03-01", "2024-03-02"]))
    fits = _fits([("2024-01", 30, 40, 4, 1.0, 3.0), ("2024-02", 30, 5, 2, np.nan, np.nan),
                  ("all", 30, 45, 4, 2.0, 5.0)])
    histories = pd.DataFrame({"period_days": [90, 90, 90], "renewals": [3, 1, 2],
                              "churned": [False, True, True]})
    out = values(frame, period_days, signup, fits, histories, PER, 0.1)
    np.testing.assert_allclose(out["revenue_per_period"], [130.0, 100.0, 300.0, 50.0])
    assert out["value_basis"].tolist() == ["cohort", "pooled", "renewal share", "none"]
    # in period n = periods paid + 1: the value if the customer makes the next renewal
    assert out["derl"][0] == pytest.approx(float(sbg.derl(1.0, 3.0, 3, 0.1)))
    assert out["derl"][1] == pytest.approx(float(sbg.derl(2.0, 5.0, 2, 0.1)))
    # 90-day clock: 4 renewals kept of 6 faced (3 kept while censored; 1 refused; 1 kept, 1
    # refused)
    r = 4 / 6
    assert out["derl"][2] == pytest.approx(1.1 / (1.1 - r))
    assert np.isnan(out["value"][3])
    np.testing.assert_allclose(out["value"][:3], out["revenue_per_period"][:3] * out["derl"][:3])


def test_the_current_period_is_the_latest_that_started_before_t():
    subs = pd.DataFrame({"customer_id": [1, 1, 2],
                         "period_start": pd.to_datetime(["2024-01-01", "2024-01-31", "2024-01-05"]),
                         "period_end": pd.to_datetime(["2024-01-31", "2024-04-30", "2024-02-04"])})
    points = pd.DataFrame({"customer_id": [1, 1, 2],
                           "t": pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-04"])})
    assert current_period_days(points, subs).tolist() == [30.0, 90.0, 30.0]
