"""Window features: the boundaries, no leakage from the future, the documented fill values."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalogue import CATEGORICAL, FEATURES
from tests.features.window_kit import compute

T = "2024-06-01"
CUSTOMER = [("c1", "2024-01-01", "ads", "R1", None), ("c2", "2024-02-01", "organic", "R2", "R1")]
SUBS = [("c1", "2024-01-01", "2024-05-15", "basic", 100.0, "renewed"),
        ("c1", "2024-05-15", "2024-06-01", "basic", 100.0, "renewed"),
        ("c1", "2024-06-01", "2024-07-01", "pro", 250.0, "open"),  # plan change from day t
        ("c2", "2024-02-01", "2024-12-01", "basic", 90.0, "open")]
POINTS = [("c1", T, 0, "2024-01-01"), ("c1", "2024-05-31", 0, "2024-01-01"),
          ("c2", T, 0, "2024-02-01")]


def _row(result, customer="c1", t=T):
    return result.loc[(customer, pd.Timestamp(t))]


def test_boundaries_event_at_t_excluded_at_t_minus_90_included(tmp_path):
    usage = [("c1", "2024-06-01 00:00:00", 1000),   # exactly t: excluded
             ("c1", "2024-05-31 23:59:59", 7),      # the day before t: included
             ("c1", "2024-03-03 00:00:00", 5),      # t - 90 days: included
             ("c1", "2024-03-02 23:59:59", 900)]    # t - 91 days: outside the window
    r = _row(compute(tmp_path, POINTS, customers=CUSTOMER, subscriptions=SUBS, usage=usage))
    assert r["usage_messages"] == 12
    assert r["usage_active_days"] == 2
    assert r["usage_days_since_last"] == 1
    assert r["window_days"] == 90
    # idle days: 88 between the two sends, none after the last one
    assert r["usage_longest_gap"] == 88
    assert r["usage_trend"] == (7 - 5) / (7 + 5)


def test_plan_is_seen_only_after_its_period_start(tmp_path):
    """A period starting on day t is a day-t event: unknown at t (definitions.md). On its
    first day the customer is seen on the renewal day of the previous period."""
    points = POINTS + [("c1", "2024-06-02", 0, "2024-01-01")]
    result = compute(tmp_path, points, customers=CUSTOMER, subscriptions=SUBS)
    at_t = _row(result)
    assert at_t["plan_code"] == 0 and at_t["fee"] == 100.0  # still the basic period
    assert at_t["days_to_renewal"] == 0 and at_t["days_past_renewal"] == 0  # due today
    assert at_t["periods_paid"] == 2
    after = _row(result, t="2024-06-02")
    assert after["plan_code"] == 1 and after["fee"] == 250.0  # pro, seen from the next day
    assert after["days_to_renewal"] == 29 and after["periods_paid"] == 3
    before = _row(result, t="2024-05-31")
    assert before["plan_code"] == 0 and before["fee"] == 100.0
    assert before["days_to_renewal"] == 1
    # renewals in [t, t + 60): the period ends 2024-06-01, then every 17 days
    assert before["renewals_in_horizon"] == 4
    assert before["periods_paid"] == 2


def test_a_pending_renewal_is_seen_as_days_past_the_period_end(tmp_path):
    subs = [("c1", "2024-01-01", "2024-05-25", "basic", 100.0, "renewed"),
            ("c1", "2024-06-03", "2024-07-03", "basic", 100.0, "open")]  # paid 9 days late
    result = compute(tmp_path, [("c1", T, 0, "2024-01-01"), ("c1", "2024-06-04", 0, "2024-01-01")],
                     customers=CUSTOMER, subscriptions=subs)
    pending = _row(result)
    assert pending["days_past_renewal"] == 7 and pending["days_to_renewal"] == 0
    assert pending["renewals_in_horizon"] == 0
    paid = _row(result, t="2024-06-04")
    assert paid["days_past_renewal"] == 0 and paid["days_to_renewal"] == 29


def test_fill_values_and_dtypes_without_events(tmp_path):
    result = compute(tmp_path, POINTS, customers=CUSTOMER, subscriptions=SUBS)
    r = _row(result, customer="c2")
    assert r["usage_messages"] == 0 and r["usage_trend"] == 0 and r["usage_slope"] == 0
    assert r["usage_days_since_last"] == r["window_days"] == 90
    assert r["usage_longest_gap"] == 90 and r["charge_mean"] == 0
    assert pd.isna(r["nps_last"]) and r["nps_band"] == 0
    assert r["was_referred"] == 1 and r["channel_code"] == 1
    for name in FEATURES:
        expected = "int64" if name in CATEGORICAL else "float64"
        assert str(result[name].dtype) == expected, name


def test_referrals_tickets_nps(tmp_path):
    tickets = [("c1", "2024-05-20 10:00:00", "billing", None),
               ("c1", "2024-05-25 10:00:00", "delivery", "2024-06-02 09:00:00"),  # open at t
               ("c1", "2024-05-26 10:00:00", "other", "2024-05-27 09:00:00"),
               ("c1", "2024-06-01 08:00:00", "billing", None)]                    # at t: excluded
    nps = [("c1", "2024-04-01 10:00:00", 9), ("c1", "2024-05-30 10:00:00", 3),
           ("c1", "2024-06-01 10:00:00", 10),
           ("c2", "2024-05-01 10:00:00", 4), ("c2", "2024-05-01 10:00:00", 8)]  # same second
    result = compute(tmp_path, POINTS, customers=CUSTOMER, subscriptions=SUBS, tickets=tickets,
                     nps=nps)
    r = _row(result)
    assert (r["tickets_billing"], r["tickets_delivery"], r["tickets_other"]) == (1, 1, 1)
    assert r["tickets_unresolved"] == 2 and r["tickets_days_since_last"] == 6
    assert r["nps_last"] == 3 and r["nps_band"] == 1 and r["nps_answers"] == 2
    assert _row(result, customer="c2")["nps_last"] == 8  # a tie takes the higher score
    # c2 signed up on 2024-02-01 with c1's code: a referral in c1's window at t
    assert r["referrals_ever"] == 1 and r["referrals_window"] == 0  # 2024-02-01 < t - 90


events = st.lists(st.tuples(st.sampled_from(["c1", "c2"]), st.integers(-120, 60),
                            st.integers(0, 86399), st.integers(0, 50)), max_size=25)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=events, after=events)
def test_events_at_or_after_t_never_change_features_at_t(tmp_path_factory, before, after):
    t = dt.datetime(2024, 6, 1)

    def rows(evts, future):
        out = {"usage": [], "charges": [], "tickets": [], "nps": []}
        for cid, day, sec, value in evts:
            day = abs(day) if future else -abs(day) - 1
            ts = t + dt.timedelta(days=day, seconds=sec)
            out["usage"].append((cid, ts, value))
            out["charges"].append((cid, ts, float(value + 1)))
            out["tickets"].append((cid, ts, "billing", None))
            out["nps"].append((cid, ts, value % 11))
        return out

    past = rows(before, future=False)
    future = rows(after, future=True)
    both = {k: past[k] + future[k] for k in past}
    friend = [("c9", "2024-06-01", "ads", "R9", "R1")]  # signs up with c1's code at t
    base = tmp_path_factory.mktemp("prop")
    a = compute(base / "a", POINTS, customers=CUSTOMER, subscriptions=SUBS, **past)
    b = compute(base / "b", POINTS + [("c9", "2024-06-20", 0, "2024-06-01")],
                customers=CUSTOMER + friend, subscriptions=SUBS, **both)
    pd.testing.assert_frame_equal(a, b.loc[a.index])
