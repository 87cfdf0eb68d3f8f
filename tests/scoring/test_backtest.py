"""A week's scores against what happened: hand-built weeks with known figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.backtest import difference, judge, reliability, wilson


def _week(p, in_list=None, holdout=None, net=None) -> pd.DataFrame:
    n = len(p)
    return pd.DataFrame({
        "churn_probability": np.asarray(p, float),
        "in_list": np.zeros(n, bool) if in_list is None else np.asarray(in_list, bool),
        "holdout": np.zeros(n, bool) if holdout is None else np.asarray(holdout, bool),
        "expected_net": np.asarray(p, float) if net is None else np.asarray(net, float)})


def test_known_auc_brier_lift_level_and_list_precision():
    p = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02]
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    listed = [True, True, True, False, False, False, False, False, False, False]
    expected = {"auc": 0.8, "auc_low": 0.7, "auc_high": 0.9, "brier": 0.2, "brier_low": 0.1,
                "brier_high": 0.15, "lift_top_decile": 2.0, "lift_low": 1.0, "lift_high": 3.0}
    r = judge(_week(p, listed), y, expected, clv=200, offer_cost=10, contact_cost=1)
    # AUC: of the 4 x 6 churner/stayer pairs, the churner ranks higher in 20
    assert r["auc"] == pytest.approx(20 / 24)
    assert r["brier"] == pytest.approx(np.mean((np.array(p) - y) ** 2))
    assert r["lift_top_decile"] == pytest.approx(1 / 0.4)  # top 10 % = 1 customer, a churner
    assert r["mean_probability"] == pytest.approx(np.mean(p)) and r["churn"] == 0.4
    assert (r["churn_lo"], r["churn_hi"]) == pytest.approx(wilson(4, 10))
    assert r["list_precision"] == pytest.approx(2 / 3) and r["listed"] == 3
    assert r["auc_inside"] and not r["brier_inside"] and r["lift_top_decile_inside"]
    assert r["auc_band_low"] == 0.7


def test_empc_of_a_perfect_ranking_is_the_published_vector():
    """Verbraken et al. 2013: perfect ranking, half churners, CLV 200, offer 10, contact 1,
    gamma ~ Beta(6, 14): EMPC 28.0, contacting half of the customers."""
    y = np.array([1] * 50 + [0] * 50)
    p = np.linspace(0.99, 0.01, 100)
    r = judge(_week(p), y, {}, clv=200, offer_cost=10, contact_cost=1)
    assert r["empc"] == pytest.approx(28.0, abs=1e-9)
    assert r["empc_contact_share"] == pytest.approx(0.5)
    assert r["auc"] == 1.0


def test_the_campaign_effect_and_its_interval():
    """Newcombe (1998), method 10, his example: 56/70 - 48/80 = 0.200 (0.0524, 0.3339)."""
    d, lo, hi = difference(56, 70, 48, 80)
    assert (d, lo, hi) == pytest.approx((0.2, 0.0524, 0.3339), abs=5e-5)
    # the listed (contacted) against the control customers who would have been listed: those
    # in control whose expected profit reaches the list's last one; the rest of control is not
    # comparable
    n = 200
    net = np.linspace(100, -100, n)
    in_list = np.zeros(n, bool)
    in_list[:70] = True
    holdout = np.zeros(n, bool)
    holdout[70:150] = True  # control: 80 above the cut-off (net >= net[69]), and some below
    net[70:150] = net[0]  # all of them would have been listed
    holdout[190:] = True  # ... these would not: left out of the comparison
    y = np.zeros(n, int)
    y[:56] = 1
    y[70:118] = 1
    y[190:] = 1
    r = judge(_week(np.full(n, 0.5), in_list, holdout, net), y, {}, clv=200, offer_cost=10,
              contact_cost=1)
    assert r["control_would_list"] == 80
    assert (r["campaign_effect"], r["campaign_effect_lo"], r["campaign_effect_hi"]) == \
        pytest.approx((0.2, 0.0524, 0.3339), abs=5e-5)


def test_one_class_weeks_give_no_auc_but_still_a_level():
    r = judge(_week([0.1, 0.2, 0.3]), np.array([0, 0, 0]), {}, clv=200, offer_cost=10,
              contact_cost=1)
    assert np.isnan(r["auc"]) and np.isnan(r["empc"]) and r["churn"] == 0.0
    assert r["churn_lo"] == 0.0 and 0 < r["churn_hi"] < 1


def test_reliability_bins():
    p = np.arange(1, 101) / 100
    y = (np.arange(100) % 2).astype(int)
    r = reliability(p, y)
    assert r["customers"].tolist() == [10] * 10
    assert r["mean_probability"].iloc[0] == pytest.approx(0.055)
    assert (r["churn"] == 0.5).all()
