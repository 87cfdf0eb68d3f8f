"""The backtest: sBG against Kaplan-Meier carried forward on what happened after the fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention import cohorts, holdout


def _histories(rng, n: int, alpha: float, beta: float, observed: int, cohort: str = "2024-01"):
    """n first runs of one monthly cohort, churning at sBG renewal times, seen up to
    `observed` renewals (the rest censored there)."""
    theta = rng.beta(alpha, beta, n)
    life = rng.geometric(np.clip(theta, 1e-12, 1.0))
    churned = life <= observed
    return pd.DataFrame({"customer_id": np.arange(n), "cohort": cohort, "period_days": 30,
                         "periods": np.minimum(life, observed + 1), "churned": churned,
                         "renewals": np.where(churned, life, observed)})


def test_km_at_and_renewals_within():
    s = holdout.km_at([1, 2, 2, 3], [True, True, False, False], [0, 1, 2, 3])
    assert s.tolist() == pytest.approx([1.0, 0.75, 0.75 * 2 / 3, 0.5])
    assert [holdout.renewals_within(c, 183) for c in (30, 90, 365)] == [6, 2, 0]


def test_km_at_stops_where_too_few_are_at_risk():
    """One churner alone at the longest renewal drops the curve to 0; with a floor on the
    histories at risk the curve stays flat after the last churn that many saw."""
    renewals = [5] * 10 + [2, 6]
    churned = [False] * 10 + [True, True]
    t = [0, 2, 5, 6, 7]
    assert holdout.km_at(renewals, churned, t).tolist() == pytest.approx(
        [1.0, 11 / 12, 11 / 12, 0.0, 0.0])
    assert holdout.km_at(renewals, churned, t, min_at_risk=10).tolist() == pytest.approx(
        [1.0, 11 / 12, 11 / 12, 11 / 12, 11 / 12])
    # a floor nobody reaches: no churn is read at all
    assert holdout.km_at(renewals, churned, t, min_at_risk=13).tolist() == [1.0] * 5


def test_sbg_beats_the_flat_curve_on_sbg_customers():
    rng = np.random.default_rng(7)
    after = _histories(rng, 3000, 0.7, 1.2, observed=10)
    # the same customers seen 6 renewals earlier
    before = after.assign(churned=after["churned"] & (after["renewals"] <= 4),
                          renewals=np.minimum(after["renewals"], 4))
    fits = cohorts.fits(before, min_cohort_size=30, min_cohort_periods=3)
    table = holdout.compare(before, after, fits, held_out_days=183)
    assert table["cohort"].tolist() == ["2024-01", cohorts.POOLED]
    row = table.iloc[0]
    assert (row["renewals_before"], row["first_t"], row["last_t"]) == (4, 5, 10)
    assert row["mae_sbg"] < 0.02 < row["mae_km"]
    assert row["winner"] == "sBG" and row["reason"] == ""
    text = holdout.verdict(table)
    assert text.startswith("sBG wins") and "over 1 cohorts; sBG is better in 1" in text


def test_reasons_instead_of_numbers():
    rng = np.random.default_rng(1)
    before = _histories(rng, 500, 0.7, 1.2, observed=4).assign(period_days=365)
    fits = cohorts.fits(before, min_cohort_size=30, min_cohort_periods=3)
    table = holdout.compare(before, before, fits, held_out_days=183)
    assert table["reason"].str.startswith("no 365-day renewal").all()
    monthly = before.assign(period_days=30)
    fits = cohorts.fits(monthly, min_cohort_size=30, min_cohort_periods=3)
    table = holdout.compare(monthly, monthly, fits, held_out_days=183)
    assert (table["reason"] == "no renewal after the holdout day observed yet").all()
    assert holdout.verdict(table).startswith("no cohort could be compared")
