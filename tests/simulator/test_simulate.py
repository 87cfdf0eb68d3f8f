"""The simulated world: deterministic, its truth honest, its signals pointing the stated way."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tests.conftest import build_world
from tests.features.sim_labels import export_as_of, labelled_truth, window_counts


def _files(root):
    """The world's files (export/ and truth/), not the stage's own bookkeeping beside them."""
    return {p.relative_to(root): p.read_bytes()
            for sub in ("export", "truth") for p in sorted((root / sub).rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(params, tmp_path):
    a = _files(build_world(params, tmp_path / "a", customers=300, days=300))
    b = _files(build_world(params, tmp_path / "b", customers=300, days=300))
    assert sorted(map(str, a)) == sorted(
        ["export/charges.csv", "export/customers.csv", "export/nps.csv",
         "export/subscriptions.csv", "export/tickets.csv", "export/usage.csv",
         "truth/truth.parquet", "truth/world.json"])
    assert a == b
    c = _files(build_world(params, tmp_path / "c", customers=300, days=300, seed=1))
    assert c[next(iter(c))] != a[next(iter(a))]


def test_truth_params_do_not_change_the_export(params, tmp_path):
    """The truth has its own random stream: more samples, same world."""
    a = _files(build_world(params, tmp_path / "a", customers=200, days=250))
    b = _files(build_world(params, tmp_path / "b", customers=200, days=250, truth_samples=16))
    exported = [k for k in a if str(k).startswith("export/")]
    assert all(a[k] == b[k] for k in exported)


def test_parquet_and_string_ids(params, tmp_path):
    out = build_world(params, tmp_path / "w", customers=150, days=200, format="parquet",
                      string_ids=True)
    customers = pd.read_parquet(out / "export" / "customers.parquet")
    assert customers["customer_id"].str.match(r"^C\d{7}$").all()
    usage = pd.read_parquet(out / "export" / "usage.parquet")
    assert set(usage["customer_id"]) <= set(customers["customer_id"])


@pytest.fixture(scope="module")
def points(world, params):
    return labelled_truth(world, params.labels.horizon_days, params.labels.grace_days)


def test_realised_churn_matches_mean_truth(points):
    for kind, grp in points.groupby("kind"):
        p = grp["truth"].to_numpy()
        se = math.sqrt((p * (1 - p)).sum()) / len(p)
        # points of one customer overlap in time, so allow for their correlation (x2)
        assert abs(grp["label"].mean() - p.mean()) < 4 * 2 * se, kind
    deciles = pd.qcut(points["truth"], 10, labels=False)
    realised = points.groupby(deciles)["label"].mean()
    assert realised.iloc[-1] > 3 * realised.iloc[0]


def test_noise_floor_keeps_the_oracle_honest(points):
    early = points[points["kind"] == "early_life"]
    auc = roc_auc_score(early["label"], early["truth"])
    assert 0.68 < auc < 0.92
    assert len(early) > 1500


@pytest.fixture(scope="module")
def early(world, params):
    """Early-life points (day 90) with the first-90-day signals computed from the export."""
    ex = world / "export"
    truth = pd.read_parquet(world / "truth" / "truth.parquet")
    pts = truth[truth["kind"] == "early_life"].copy()
    pts["t"] = pd.to_datetime(pts["t"]).astype("datetime64[us]")
    usage = pd.read_csv(ex / "usage.csv", parse_dates=["ts"])
    usage["day"] = usage["ts"].dt.floor("D")
    days = usage.drop_duplicates(["customer_id", "day"])
    pts["active_last30"] = window_counts(days, "day", pts, 30)
    pts["active_first30"] = window_counts(days, "day", pts, 90, 60)
    tickets = pd.read_csv(ex / "tickets.csv", parse_dates=["opened_at"])
    bad = tickets[tickets["topic"].isin(["billing", "delivery"])]
    pts["problem_tickets"] = window_counts(bad, "opened_at", pts, 30)
    charges = pd.read_csv(ex / "charges.csv", parse_dates=["ts"])
    pts["topups"] = window_counts(charges, "ts", pts, 90)
    customers = pd.read_csv(ex / "customers.csv", parse_dates=["signup_date"])
    referred = customers.dropna(subset=["referred_by"]).merge(
        customers[["customer_id", "referral_code"]].rename(columns={"customer_id": "referrer"}),
        left_on="referred_by", right_on="referral_code")
    referred = referred.rename(columns={"referrer": "customer_id", "customer_id": "friend"})
    pts["referrals"] = window_counts(referred, "signup_date", pts, 90)
    nps = pd.read_csv(ex / "nps.csv", parse_dates=["ts"]).sort_values("ts")
    m = pts[["customer_id", "t"]].merge(nps, on="customer_id")
    last = m[m["ts"] < m["t"]].groupby(["customer_id", "t"])["score"].last()
    pts = pts.merge(last.rename("nps").reset_index(), on=["customer_id", "t"], how="left")
    subs = pd.read_csv(ex / "subscriptions.csv", parse_dates=["period_start"])
    first_plan = subs.sort_values("period_start").groupby("customer_id")["plan"].first()
    pts["plan"] = pts["customer_id"].map(first_plan)
    pts["channel"] = pts["customer_id"].map(customers.set_index("customer_id")["channel"])
    return pts


def _mean(frame, mask):
    assert mask.sum() >= 30, "too few points to compare"
    return frame.loc[mask, "truth"].mean()


def test_fading_usage_raises_risk(early):
    ratio = (early["active_last30"] + 1) / (early["active_first30"] + 1)
    assert _mean(early, ratio < 0.6) > 1.5 * _mean(early, ratio > 1.2)


def test_billing_and_delivery_tickets_raise_risk(early):
    # a problem may have passed by the renewal, so tickets are a weaker signal than usage
    assert _mean(early, early["problem_tickets"] > 0) > 1.12 * _mean(early,
                                                                     early["problem_tickets"] == 0)


def test_low_topups_raise_risk(early):
    assert _mean(early, early["topups"] <= 1) > 1.2 * _mean(early, early["topups"] >= 3)


def test_referrals_lower_risk(early):
    assert _mean(early, early["referrals"] > 0) < 0.8 * _mean(early, early["referrals"] == 0)


def test_high_nps_lowers_risk(early):
    assert _mean(early, early["nps"] >= 9) < 0.8 * _mean(early, early["nps"] <= 6)


def test_plans_and_channels_differ(early):
    assert _mean(early, early["plan"] == "basic") > _mean(early, early["plan"] == "business")
    assert _mean(early, early["channel"] == "search_ads") > _mean(early,
                                                                 early["channel"] == "partner")
    assert _mean(early, early["channel"] == "referral") < _mean(early, early["channel"] != "referral")


def test_world_is_shaped_like_a_business(world, params):
    customers = pd.read_csv(world / "export" / "customers.csv", parse_dates=["signup_date"])
    assert customers["customer_id"].is_unique and customers["referral_code"].is_unique
    # growth: the second year signs up more customers than the first
    start = pd.Timestamp(params.simulate.start)
    year1 = (customers["signup_date"] < start + pd.Timedelta(days=365)).sum()
    assert len(customers) - year1 > year1
    # a Nowruz dip: the first 13 days of Farvardin sign up fewer than the 13 days before
    nowruz = pd.Timestamp("2024-03-20")
    during = customers["signup_date"].between(nowruz, nowruz + pd.Timedelta(days=12)).sum()
    before = customers["signup_date"].between(nowruz - pd.Timedelta(days=13),
                                              nowruz - pd.Timedelta(days=1)).sum()
    assert during < 0.7 * before
    share = customers["referred_by"].notna().mean()
    assert 0.05 < share < 0.35
    usage = pd.read_csv(world / "export" / "usage.csv", usecols=["ts"], parse_dates=["ts"])
    assert usage["ts"].max() < export_as_of(world)
    summary = json.loads((world / "truth" / "world.json").read_text())
    assert summary["customers"] == 4000 and summary["reactivations"] > 0
    assert 0.03 < summary["churned_periods"] / summary["periods"] < 0.2
    assert np.isfinite(summary["mean_truth_early_life"])


def test_non_additive_laws_are_zero_unless_a_world_sets_them(params):
    """The frozen worlds' law is unchanged; worlds/c.yaml's three terms add exactly their
    documented logits (test vector worked by hand)."""
    import dataclasses

    from simulator.rules import Rules

    w0 = params.simulate.world
    wc = dataclasses.replace(w0, churn_disengaged=-1.0, churn_onboarding_problem=1.0,
                             churn_overpay=0.8)
    fees = [p.fee for p in w0.plans]
    # an onboarding customer, disengaged (z = -1.5), with a billing problem, on the dearest
    # plan; and a settled, engaged one on the cheapest plan
    args = dict(z=np.array([-1.5, 0.5]), billing=np.array([True, False]),
                delivery=np.array([False, False]), tenure=np.array([30, 200]),
                plan=np.array([int(np.argmax(fees)), int(np.argmin(fees))]),
                channel=np.array([0, 0]), referred=np.array([False, False]),
                referrer=np.array([False, False]), day=np.array([100, 500]))
    floor = w0.churn_noise_floor

    def logit(p):
        q = (p - floor) / (1 - floor)
        return np.log(q / (1 - q))

    base, extra = Rules(w0).churn_probability(**args), Rules(wc).churn_probability(**args)
    premium = np.log(max(fees) / min(fees))
    expected = np.array([1.5 + 1.0 + 0.8 * premium * 1.5, 0.0])
    np.testing.assert_allclose(logit(extra) - logit(base), expected, atol=1e-9)
    assert (w0.churn_disengaged, w0.churn_onboarding_problem, w0.churn_overpay) == (0, 0, 0)
    # the drifting base rate: the same shift for everyone, growing with the renewal's day
    drift = Rules(dataclasses.replace(w0, churn_drift_per_year=0.73)).churn_probability(**args)
    np.testing.assert_allclose(logit(drift) - logit(base), 0.73 * np.array([100, 500]) / 365,
                               atol=1e-9)
    assert w0.churn_drift_per_year == 0
