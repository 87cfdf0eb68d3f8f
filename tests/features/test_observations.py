"""Observation points, labels and censoring exactly as definitions.md says."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features import observations as obs

A = dt.date(2024, 12, 1)
LABELS = dict(every_days=14, min_tenure_days=14, early_life_days=90)


def _customers(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "signup_date"]).astype(
        {"signup_date": "datetime64[s]"})


def _subs(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "period_start", "period_end", "outcome"]
                        ).astype({"period_start": "datetime64[s]", "period_end": "datetime64[s]"})


def _label(points, runs, horizon=60, grace=14):
    return obs.label(points, runs, as_of=A, horizon_days=horizon, grace_days=grace)


def test_grid_kinds():
    ages, kinds = obs.grid_offsets(130, **LABELS)
    assert list(ages) == [14, 28, 42, 56, 70, 84, 90, 104, 118]
    assert [obs.KIND_NAMES[k] for k in kinds] == ["young"] * 6 + ["early_life"] + ["ongoing"] * 2


def test_runs_churn_dates_and_reactivation():
    customers = _customers(("a", "2024-01-01"), ("b", "2024-01-01"), ("c", "2024-01-10"))
    subs = _subs(
        ("a", "2024-01-01", "2024-01-31", "renewed"),
        ("a", "2024-01-31", "2024-03-01", "cancelled"),  # churn 2024-03-01
        ("a", "2024-05-01", "2024-12-20", "open"),       # a return: a new run, open-ended
        ("b", "2024-01-01", "2024-01-31", "renewed"),    # no following period: derived lapse
        ("c", "2024-11-10", "2024-11-25", "open"),       # ended, but grace not over at A
    )
    runs = obs.runs(customers, subs, as_of=A, grace_days=14).set_index(["customer_id", "run"])
    assert runs.loc[("a", 0), "run_end"] == pd.Timestamp("2024-03-01")
    assert runs.loc[("a", 1), "run_start"] == pd.Timestamp("2024-05-01")
    assert pd.isna(runs.loc[("a", 1), "run_end"])
    assert runs.loc[("b", 0), "run_end"] == pd.Timestamp("2024-01-31")
    assert pd.isna(runs.loc[("c", 0), "run_end"])
    assert runs.loc[("c", 0), "run_start"] == pd.Timestamp("2024-01-10")  # signup, not period


def test_churned_customers_are_not_points_after_their_churn():
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-01-31", "renewed"),
                 ("a", "2024-01-31", "2024-03-01", "lapsed"))
    runs = obs.runs(customers, subs, as_of=A, grace_days=14)
    pts = obs.points(runs, as_of=A, **LABELS)
    assert pts["t"].max() < pd.Timestamp("2024-03-01")  # churn date itself: not active
    assert set(pts["kind"]) == {"young"}  # churned before day 90: no early-life point
    assert (pts["t"] > pd.Timestamp("2024-01-01")).all()  # signup day: not yet active


def test_label_window_is_half_open_and_censored():
    customers = _customers(("a", "2024-01-01"), ("b", "2024-01-01"))
    # a churns exactly at t + 60 for t = day 14 (2024-01-15): outside that point's label
    subs = _subs(("a", "2024-01-01", "2024-03-15", "cancelled"),
                 ("b", "2024-01-01", "2025-01-01", "open"))
    runs = obs.runs(customers, subs, as_of=A, grace_days=14)
    pts = obs.points(runs, as_of=A, **LABELS)
    pts["label"] = _label(pts, runs)
    a = pts[pts["customer_id"] == "a"].set_index("t")["label"]
    assert a[pd.Timestamp("2024-01-15")] == 0  # churn at t + horizon: outside
    assert a[pd.Timestamp("2024-01-29")] == 1  # churn at t + 46: inside
    b = pts[pts["customer_id"] == "b"]
    known = b["t"] + pd.Timedelta(days=74) <= pd.Timestamp(A)
    assert b.loc[known, "label"].eq(0).all()
    assert b.loc[~known, "label"].isna().all() and (~known).sum() > 0
    scoring = pts[pts["kind"] == "scoring"]
    assert list(scoring["customer_id"]) == ["b"] and scoring["label"].isna().all()
    assert (scoring["t"] == pd.Timestamp(A)).all()


def test_reactivated_run_restarts_the_grid():
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-01-31", "cancelled"),
                 ("a", "2024-04-01", "2024-05-01", "renewed"),
                 ("a", "2024-05-01", "2024-12-31", "open"))
    runs = obs.runs(customers, subs, as_of=A, grace_days=14)
    pts = obs.points(runs, as_of=A, **LABELS)
    second = pts[pts["run"] == 1]
    assert second["t"].min() == pd.Timestamp("2024-04-15")  # 14 days after the return
    assert (second["run_start"] == pd.Timestamp("2024-04-01")).all()
    early = second[second["kind"] == "early_life"]["t"]
    assert list(early) == [pd.Timestamp("2024-06-30")]


@pytest.mark.parametrize("grace", [0, 14, 30])
def test_derived_lapse_depends_on_grace(grace):
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-11-10", "renewed"))
    runs = obs.runs(customers, subs, as_of=A, grace_days=grace)
    lapsed = pd.Timestamp("2024-11-10") + pd.Timedelta(days=grace) <= pd.Timestamp(A)
    assert pd.notna(runs["run_end"].iloc[0]) == lapsed
