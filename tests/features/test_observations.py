"""Observation points, labels and censoring exactly as definitions.md says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features import observations as obs

A = dt.date(2024, 12, 1)
LABELS = dict(every_days=14, min_tenure_days=14, early_life_days=90, grace_days=14)
T = pd.Timestamp


def _customers(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "signup_date"]).astype(
        {"signup_date": "datetime64[s]"})


def _subs(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "period_start", "period_end", "outcome"]
                        ).astype({"period_start": "datetime64[s]", "period_end": "datetime64[s]"})


def _runs(customers, subs, view=A, grace=14):
    return obs.runs(customers, subs, view=view, grace_days=grace)


def _label(points, runs, horizon=60, grace=14):
    return obs.label(points, runs, as_of=A, horizon_days=horizon, grace_days=grace)


def test_grid_kinds_with_a_phase():
    ages = np.arange(1, 131)
    kinds = obs.grid_kind(ages, 0, **LABELS)
    assert list(ages[kinds != obs.NONE]) == [14, 28, 42, 56, 70, 84, 90, 104, 118]
    kinds = obs.grid_kind(ages, 5, **LABELS)
    assert list(ages[kinds != obs.NONE]) == [19, 33, 47, 61, 75, 89, 90, 95, 109, 123]
    assert [obs.KIND_NAMES[k] for k in kinds[kinds != obs.NONE]] == (
        ["young"] * 6 + ["early_life"] + ["ongoing"] * 3)


def test_phase_is_stable_and_spread():
    ids = [f"C{i}" for i in range(2000)]
    ph = obs.phase(ids, 14)
    assert ph.min() >= 0 and ph.max() < 14
    assert list(obs.phase(ids[:3], 14)) == list(ph[:3])
    counts = np.bincount(ph, minlength=14)
    assert counts.min() > 2000 / 14 * 0.7  # every phase is used
    # an integer id and its text give the same phase (ingest may type ids either way)
    assert list(obs.phase([7, 12], 14)) == list(obs.phase(["7", "12"], 14))


def test_runs_churn_dates_and_reactivation():
    customers = _customers(("a", "2024-01-01"), ("b", "2024-01-01"), ("c", "2024-01-10"))
    subs = _subs(
        ("a", "2024-01-01", "2024-01-31", "renewed"),
        ("a", "2024-01-31", "2024-03-01", "cancelled"),  # churn 2024-03-01
        ("a", "2024-05-01", "2024-12-20", "open"),       # a return: a new run, open-ended
        ("b", "2024-01-01", "2024-01-31", "renewed"),    # no following period: derived lapse
        ("c", "2024-11-10", "2024-11-25", "open"),       # ended, but grace not over at A
    )
    runs = _runs(customers, subs).set_index(["customer_id", "run"])
    assert runs.loc[("a", 0), "churn"] == T("2024-03-01")
    assert runs.loc[("a", 0), "last_at_risk"] == T("2024-03-01")  # known on its day
    assert runs.loc[("a", 1), "run_start"] == T("2024-05-01")
    assert pd.isna(runs.loc[("a", 1), "churn"])
    assert runs.loc[("b", 0), "churn"] == T("2024-01-31")
    assert runs.loc[("b", 0), "last_at_risk"] == T("2024-02-14")  # pending until end + grace
    assert pd.isna(runs.loc[("c", 0), "churn"])
    assert runs.loc[("c", 0), "run_start"] == T("2024-01-10")  # signup, not period


def test_a_gap_longer_than_grace_is_a_churn_and_a_return():
    customers = _customers(("a", "2024-01-01"), ("b", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-02-01", "renewed"),
                 ("a", "2024-02-16", "2024-12-16", "open"),   # 15 days late: churn + return
                 ("b", "2024-01-01", "2024-02-01", "renewed"),
                 ("b", "2024-02-15", "2024-12-15", "open"))   # 14 days late: a late payer
    runs = _runs(customers, subs).set_index(["customer_id", "run"])
    assert runs.loc[("a", 0), "churn"] == T("2024-02-01")
    assert runs.loc[("a", 1), "run_start"] == T("2024-02-16")
    assert list(runs.loc["b"].index) == [0] and pd.isna(runs.loc[("b", 0), "churn"])


def test_outcomes_are_known_only_from_their_day():
    subs = _subs(("a", "2024-01-01", "2024-02-01", "renewed"),
                 ("a", "2024-02-05", "2024-03-05", "cancelled"),
                 ("b", "2024-01-01", "2024-02-01", "lapsed"))
    seen = lambda day: obs.as_seen(subs, view=day, grace_days=14).set_index(  # noqa: E731
        ["customer_id", "period_start"])["outcome"]
    early = seen(dt.date(2024, 2, 5))  # renewal not known until the next period starts
    assert early[("a", T("2024-01-01"))] == "open" and len(early.loc["a"]) == 1
    assert seen(dt.date(2024, 2, 6))[("a", T("2024-01-01"))] == "renewed"
    assert seen(dt.date(2024, 3, 5))[("a", T("2024-02-05"))] == "open"   # cancelled on its end:
    assert seen(dt.date(2024, 3, 6))[("a", T("2024-02-05"))] == "cancelled"  # known after it
    assert seen(dt.date(2024, 2, 15))[("b", T("2024-01-01"))] == "open"  # lapse: end + grace
    assert seen(dt.date(2024, 2, 16))[("b", T("2024-01-01"))] == "lapsed"


def test_at_risk_includes_the_renewal_day_and_a_pending_renewal():
    customers = _customers(("cancel", "2024-01-01"), ("lapse", "2024-01-01"))
    subs = _subs(("cancel", "2024-01-01", "2024-03-01", "cancelled"),
                 ("lapse", "2024-01-01", "2024-03-01", "lapsed"))
    runs = _runs(customers, subs)
    days = lambda name: [d for d in pd.date_range("2024-02-25", "2024-03-20")  # noqa: E731
                         if obs.at_risk(runs[runs["customer_id"] == name], d).any()]
    assert days("cancel")[-1] == T("2024-03-01")  # the renewal day itself: not decided yet
    assert days("lapse")[-1] == T("2024-03-15")  # pending through end + grace


def test_points_stop_when_the_churn_shows_and_pending_points_are_churn():
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-01-31", "renewed"),
                 ("a", "2024-01-31", "2024-03-01", "lapsed"))
    runs = _runs(customers, subs)
    pts = obs.points(runs, as_of=A, **LABELS)
    pts["label"] = _label(pts, runs)
    assert pts["t"].max() <= T("2024-03-15")
    assert set(pts["kind"]) == {"young"}  # churned before day 90: no early-life point
    assert (pts["t"] > T("2024-01-01")).all()  # signup day: not yet at risk
    pending = pts[pts["t"] > T("2024-03-01")]
    assert len(pending) and pending["label"].eq(1).all()  # a refused pending renewal


def test_label_window_is_half_open_and_censored():
    customers = _customers(("a", "2024-01-01"), ("b", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-06-15", "cancelled"),
                 ("b", "2024-01-01", "2025-01-01", "open"))
    runs = _runs(customers, subs)
    pts = obs.points(runs, as_of=A, **LABELS)
    pts["label"] = _label(pts, runs)
    a = pts[pts["customer_id"] == "a"].set_index("t")["label"]
    churn = T("2024-06-15")
    for t, label in a.items():
        assert label == int(churn < t + pd.Timedelta(days=60)), t
    assert a.index.max() <= churn and (a == 0).any() and (a == 1).any()
    b = pts[pts["customer_id"] == "b"]
    known = b["t"] + pd.Timedelta(days=74) <= T(A)
    assert b.loc[known, "label"].eq(0).all()
    assert b.loc[~known, "label"].isna().all() and (~known).sum() > 0
    scoring = pts[pts["kind"] == "scoring"]
    assert list(scoring["customer_id"]) == ["b"] and scoring["label"].isna().all()
    assert (scoring["t"] == T(A)).all()


def test_label_at_the_horizon_edge():
    """Churn exactly at t + horizon is outside the window; at t + horizon - 1, inside."""
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-06-01", "cancelled"))
    runs = _runs(customers, subs)
    pts = pd.DataFrame({"customer_id": ["a", "a"], "run": [0, 0],
                        "t": [T("2024-04-02"), T("2024-04-03")]})
    assert list(_label(pts, runs)) == [0, 1]


def test_reactivated_run_restarts_the_grid():
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-01-31", "cancelled"),
                 ("a", "2024-04-01", "2024-05-01", "renewed"),
                 ("a", "2024-05-01", "2024-12-31", "open"))
    runs = _runs(customers, subs)
    pts = obs.points(runs, as_of=A, **LABELS)
    second = pts[pts["run"] == 1]
    ph = int(obs.phase(["a"], 14)[0])
    assert second["t"].min() == T("2024-04-01") + pd.Timedelta(days=14 + ph)
    assert (second["run_start"] == T("2024-04-01")).all()
    early = second[second["kind"] == "early_life"]["t"]
    assert list(early) == [T("2024-06-30")]


def test_a_return_inside_a_pending_lapse_gives_one_point_a_day():
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-03-01", "lapsed"),
                 ("a", "2024-03-05", "2024-12-31", "open"))
    runs = _runs(customers, subs)
    assert len(runs) == 2
    pts = obs.points(runs, as_of=A, **LABELS)
    assert not pts.duplicated(["customer_id", "t"]).any()
    both = runs[obs.at_risk(runs, dt.date(2024, 3, 10))]
    assert len(both) == 2  # old run pending, new run started
    scoring = obs.scoring_points(runs, day=dt.date(2024, 3, 10))
    assert list(scoring["run"]) == [1]


def test_first_runs_start_at_min_tenure_and_returns_after_grace():
    """Young points may start before grace_days on a first run (a customer scored in its first
    days then has training points at that tenure); a reactivated run has none in its first
    grace_days days."""
    ages = np.arange(1, 60)
    grid = dict(LABELS, min_tenure_days=1)
    first = obs.grid_kind(ages, 0, **grid)
    assert list(ages[first != obs.NONE]) == [1, 15, 29, 43, 57]
    again = obs.grid_kind(ages, 0, **grid, reactivated=True)
    assert list(ages[again != obs.NONE]) == [15, 29, 43, 57]
    both = obs.grid_kind(ages[:, None], 3, **grid, reactivated=np.array([False, True]))
    assert list(ages[both[:, 0] != obs.NONE]) == [4, 18, 32, 46]
    assert list(ages[both[:, 1] != obs.NONE]) == [18, 32, 46]


@pytest.mark.parametrize("outcome", ["lapsed", "renewed"])
def test_early_points_never_change_with_a_later_export(outcome):
    """min_tenure_days shorter than grace_days: every point an export taken on day D makes
    (t < D) is the one the full export makes, through a return inside a pending lapse (an
    exported lapse) and a return after a gap longer than grace (a derived one)."""
    customers = _customers(("a", "2024-01-01"), ("b", "2024-02-20"))
    subs = _subs(("a", "2024-01-01", "2024-03-01", outcome),
                 ("a", "2024-03-05" if outcome == "lapsed" else "2024-03-20", "2024-12-31",
                  "open"),
                 ("b", "2024-02-20", "2024-12-31", "open"))
    grid = dict(LABELS, min_tenure_days=1)
    full = obs.points(_runs(customers, subs), as_of=A, **grid)
    assert (full["run"] == 1).any()
    assert full.loc[full["customer_id"] == "b", "t"].min() <= T("2024-03-06")  # before grace
    for day in pd.date_range("2024-02-21", "2024-05-01"):
        cut = obs.points(_runs(customers, subs, view=day.date()), as_of=day.date(), **grid)
        mine = cut[cut["t"] < day].reset_index(drop=True)
        theirs = full[full["t"] < day].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs, obj=str(day.date()), check_dtype=False)


@pytest.mark.parametrize("grace", [0, 14, 30])
def test_derived_lapse_depends_on_grace(grace):
    customers = _customers(("a", "2024-01-01"))
    subs = _subs(("a", "2024-01-01", "2024-11-10", "renewed"))
    runs = _runs(customers, subs, grace=grace)
    lapsed = T("2024-11-10") + pd.Timedelta(days=grace) < T(A)
    assert pd.notna(runs["churn"].iloc[0]) == lapsed


def test_state_at_t():
    subs = _subs(("a", "2024-01-01", "2024-02-01", "renewed"),
                 ("a", "2024-02-05", "2024-03-05", "open"))
    pts = pd.DataFrame({"customer_id": ["a"] * 4,
                        "t": [T("2024-01-20"), T("2024-02-01"), T("2024-02-04"),
                              T("2024-02-05")]})
    # on 02-05 the next period starts: a day-t event, not yet seen, so still pending
    assert list(obs.state(pts, subs)) == ["in_period", "renewal_due", "pending", "pending"]
