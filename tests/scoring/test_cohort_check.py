"""The week's churners per signup cohort: the model's probabilities summed, the sBG and
Kaplan-Meier carried forward (fitted before the week) against what happened.

A hand-built export whose cohorts follow a known sBG exactly (sBG(1, 3): S(t) = 3 / (3 + t),
so the maximum-likelihood fit is alpha = 1, beta = 3 and Kaplan-Meier is S itself up to the
last renewal observed) or churn a constant 20 % at each renewal, so each method's expected
churners are known numbers; and a small simulated world whose last week is replayed (a model
trained on the export cut there), where the model and the sBG land near the churners that
followed and Kaplan-Meier carried forward falls short of them (no churn past what it saw)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import observations as obs
from retention.config import ReportConfig
from scoring import cohort_check

AS_OF = dt.date(2024, 7, 1)
DAYS, GRACE = 60, 14
REPORT = ReportConfig()  # monthly cohorts, min_cohort_size 30, min_cohort_periods 3


def S(t):  # noqa: N802 - the sBG(1, 3) survival after t renewals
    return 3 / (3 + t)


def _group(prefix: str, signup: str, length: int, lost: list[int], survivors: int):
    """Customers signed up on `signup` on a `length`-day plan: lost[t - 1] cancel at renewal t;
    `survivors` renew every time and are in the period after the last renewal (open)."""
    start = pd.Timestamp(signup)
    fates = [t for t, k in enumerate(lost, 1) for _ in range(k)] + [0] * survivors
    customers, periods = [], []
    for i, churn_at in enumerate(fates):
        cid = f"{prefix}{i:04d}"
        customers.append((cid, start))
        n = churn_at or len(lost) + 1  # periods started
        for k in range(n):
            outcome = "renewed" if k < n - 1 else "cancelled" if churn_at else "open"
            periods.append((cid, start + pd.Timedelta(days=length * k),
                            start + pd.Timedelta(days=length * (k + 1)), outcome))
    return customers, periods


def _returned():
    """r0000: a 90-day customer of 2023-06-10 who left at the first renewal, back on May 15."""
    return [("r0000", pd.Timestamp("2023-06-10"))], [
        ("r0000", pd.Timestamp("2023-06-10"), pd.Timestamp("2023-09-08"), "cancelled"),
        ("r0000", pd.Timestamp("2024-05-15"), pd.Timestamp("2024-08-13"), "open")]


def _tables(groups):
    customers, periods = [], []
    for c, p in groups:
        customers += c
        periods += p
    c = pd.DataFrame(customers, columns=["customer_id", "signup_date"]).astype(
        {"signup_date": "datetime64[s]"})
    s = pd.DataFrame(periods, columns=["customer_id", "period_start", "period_end", "outcome"]
                     ).astype({"period_start": "datetime64[s]", "period_end": "datetime64[s]"})
    return c, s.assign(plan="p", fee=100.0)


def _export():
    """The export as seen on AS_OF (2024-07-01). Cohort 2024-01 (30-day plan): 840 customers
    signed up on Jan 1 (churn at renewals 1..6 as sBG(1, 3) says; 280 left after 6) and 840 on
    Jan 25 (5 renewals so far; 315 left). Cohort 2024-04: 20 on Apr 10 (2 renewals; 12 left):
    too small to fit, so the pooled 30-day fit (exact too). The 90-day clock churns a constant
    20 %: cohort 2024-02, 49 on Feb 10 of whom 9 cancel at the first renewal, and one of
    2023-06-10 who cancelled at it and came back on 2024-05-15 (a new run, 0 renewals); one of
    Mar 30 whose renewal of Jun 28 is pending; no 90-day fit (one renewal observed), so the
    renewal share 40 / 50. Two yearly customers: Mar 5 (renews in 2025: none in the window) and
    2023-06-25 (renewal of 2024-06-24 pending), no yearly renewal ever: no basis."""
    return _tables([
        _group("a", "2024-01-01", 30, [210, 126, 84, 60, 45, 35], 280),
        _group("b", "2024-01-25", 30, [210, 126, 84, 60, 45], 315),
        _group("d", "2024-04-10", 30, [5, 3], 12),
        _group("e", "2024-02-10", 90, [9], 40),
        _returned(),
        _group("h", "2024-03-30", 90, [], 1),
        _group("f", "2024-03-05", 365, [], 1),
        _group("g", "2023-06-25", 365, [], 1),
    ])


def _scores(customers: pd.DataFrame, subs: pd.DataFrame) -> pd.DataFrame:
    at_risk = obs.scoring_points(obs.runs(customers, subs, view=AS_OF, grace_days=GRACE),
                                 day=AS_OF)["customer_id"]
    p = at_risk.str[0].map({"a": 0.1, "b": 0.2, "d": 0.25, "e": 0.15, "h": 0.5, "f": 0.01,
                            "g": 0.6, "r": 0.3})
    return pd.DataFrame({"customer_id": at_risk.to_numpy(), "churn_probability": p.to_numpy()})


def _churned(scores: pd.DataFrame) -> np.ndarray:
    """What happened: per group, its first k customers churned."""
    k = {"a": 40, "b": 70, "d": 3, "e": 9, "h": 1, "f": 0, "g": 1, "r": 0}
    ids = scores["customer_id"]
    rank = ids.groupby(ids.str[0]).cumcount()
    return (rank < ids.str[0].map(k)).to_numpy(int)


@pytest.fixture(scope="module")
def export():
    customers, subs = _export()
    scores = _scores(customers, subs)
    return customers, subs, scores, _churned(scores)


def _compare(customers, subs, scores, churned, **kw):
    return cohort_check.compare(scores, customers, subs, churned, as_of=AS_OF, days=DAYS,
                                calendar="gregorian", grace_days=GRACE, config=REPORT, **kw)


def test_each_customer_gets_its_renewals_its_fit_and_known_probabilities(export):
    customers, subs, scores, _ = export
    pc = cohort_check.customer_probabilities(
        scores["customer_id"], customers, subs, as_of=AS_OF, days=DAYS, calendar="gregorian",
        grace_days=GRACE, config=REPORT).set_index("customer_id")
    assert len(pc) == 280 + 315 + 12 + 40 + 1 + 1 + 1 + 1

    def one(prefix):
        g = pc[pc.index.str[0] == prefix]
        assert g.drop(columns=["p_sbg", "p_km"]).nunique().max() == 1  # alike within a group
        return g.iloc[0]

    a, b, d, e, h, f, g, r = (one(x) for x in "abdehfgr")
    # renewals survived, the next (or pending) renewal, and the renewals before Aug 30
    assert (a.renewals_survived, a.next_renewal, a.renewals_in_window) == (
        6, pd.Timestamp("2024-07-29"), 2)  # Jul 29, Aug 28
    assert (b.renewals_survived, b.next_renewal, b.renewals_in_window) == (
        5, pd.Timestamp("2024-07-23"), 2)  # Jul 23, Aug 22
    assert (d.renewals_survived, d.renewals_in_window) == (2, 2)  # Jul 9, Aug 8
    assert (e.renewals_survived, e.period_days, e.renewals_in_window) == (1, 90, 1)  # Aug 8
    assert (h.renewals_survived, h.next_renewal, h.renewals_in_window) == (
        0, pd.Timestamp("2024-06-28"), 1)  # pending on AS_OF: it counts
    assert (f.period_days, f.renewals_in_window) == (365, 0)
    assert (g.next_renewal, g.renewals_in_window) == (pd.Timestamp("2024-06-24"), 1)
    # a return starts again: its run's renewals, its signup cohort
    assert (r.renewals_survived, r.next_renewal, r.renewals_in_window, r.cohort) == (
        0, pd.Timestamp("2024-08-13"), 1, "2023-06")
    assert [x.cohort for x in (a, b, d, e, h, f, g)] == [
        "2024-01", "2024-01", "2024-04", "2024-02", "2024-03", "2024-03", "2023-06"]
    assert [x.basis for x in (a, b, d, e, h, g, r)] == [
        "cohort", "cohort", "pooled", "renewal share", "renewal share", "none", "renewal share"]
    # sBG(1, 3) fitted on the cohort (a, b) and pooled (d): 1 - S(n + m) / S(n)
    assert a.p_sbg == pytest.approx(1 - S(8) / S(6), rel=1e-4)  # 2 / 11
    assert b.p_sbg == pytest.approx(1 - S(7) / S(5), rel=1e-4)  # 0.2
    assert d.p_sbg == pytest.approx(1 - S(4) / S(2), rel=1e-4)  # 2 / 7
    # Kaplan-Meier is S up to renewal 6 (a's last), then flat: nothing after it
    assert a.p_km == 0.0
    assert b.p_km == pytest.approx(1 - S(6) / S(5), rel=1e-12)  # 1 / 9
    assert d.p_km == pytest.approx(1 - S(4) / S(2), rel=1e-12)  # the pooled 30-day curve
    # constant 20 % on the 90-day clock: the renewal share, and Kaplan-Meier up to renewal 1
    assert e.p_sbg == pytest.approx(0.2) and e.p_km == 0.0
    assert h.p_sbg == pytest.approx(0.2) and h.p_km == pytest.approx(0.2)
    assert r.p_sbg == pytest.approx(0.2) and r.p_km == pytest.approx(0.2)
    assert f.p_sbg == f.p_km == 0.0  # no renewal in the window
    assert np.isnan(g.p_sbg) and np.isnan(g.p_km)  # a renewal, but nothing to go by


def test_per_cohort_expected_churners_errors_and_the_pooled_row(export):
    customers, subs, scores, churned = export
    t = _compare(customers, subs, scores, churned).set_index("cohort")
    assert t.index.tolist() == ["2023-06", "2024-01", "2024-02", "2024-03", "2024-04",
                                cohort_check.ALL]
    jan = t.loc["2024-01"]
    assert (jan.customers, jan.renewing, jan.churned, jan.fit_cohort) == (595, 595, 110, 595)
    assert jan.sbg_expected == pytest.approx(280 * 2 / 11 + 315 * 0.2, rel=1e-4)
    assert jan.km_expected == pytest.approx(315 / 9, rel=1e-12)
    assert jan.model_expected == pytest.approx(280 * 0.1 + 315 * 0.2, rel=1e-12)
    apr = t.loc["2024-04"]
    assert (apr.fit_pooled, apr.churned) == (12, 3)
    assert apr.sbg_expected == pytest.approx(12 * 2 / 7, rel=1e-4)
    assert apr.km_expected == pytest.approx(12 * 2 / 7, rel=1e-12)
    feb, mar = t.loc["2024-02"], t.loc["2024-03"]
    assert (feb.sbg_expected, feb.km_expected, feb.fit_renewal_share) == (
        pytest.approx(8.0), 0.0, 40)
    assert (mar.customers, mar.renewing, mar.sbg_expected, mar.km_expected) == (
        2, 1, pytest.approx(0.2), pytest.approx(0.2))
    old = t.loc["2023-06"]  # g has no basis: out of the sBG and KM sums, and counted
    assert (old.customers, old.fit_none, old.fit_renewal_share, old.churned) == (2, 1, 1, 1)
    assert (old.sbg_expected, old.km_expected) == (pytest.approx(0.2), pytest.approx(0.2))
    # the model's column is the sum of its probabilities; errors are expected - realised
    for c in t.index[:-1]:
        ids = scores["customer_id"].str[0].map({"a": "2024-01", "b": "2024-01", "d": "2024-04",
                                                "e": "2024-02", "h": "2024-03", "f": "2024-03",
                                                "g": "2023-06", "r": "2023-06"}) == c
        assert t.loc[c, "model_expected"] == pytest.approx(
            scores.loc[ids, "churn_probability"].sum(), rel=1e-12)
        assert t.loc[c, "churned"] == churned[ids.to_numpy()].sum()
    for m in ("model", "sbg", "km"):
        np.testing.assert_allclose(t[f"{m}_error"], t[f"{m}_expected"] - t["churned"])
    # the cohorts add up to the pooled row, and the bases to the renewing customers
    cohorts_sum = t.iloc[:-1].sum(numeric_only=True)
    pd.testing.assert_series_equal(cohorts_sum, t.loc[cohort_check.ALL, cohorts_sum.index],
                                   check_names=False, check_dtype=False)
    fits = t[["fit_cohort", "fit_pooled", "fit_renewal_share", "fit_none"]].sum(axis=1)
    assert fits.tolist() == t["renewing"].tolist()
    assert t.loc[cohort_check.ALL, "customers"] == len(scores) == 651


def test_nothing_after_the_week_counts_and_the_row_order_does_not(export):
    """The export taken later (the survivors' next renewals decided, a lapse known, new
    customers) gives the same table as the one taken on AS_OF, as do the scores shuffled."""
    customers, subs, scores, churned = export
    seen = _compare(customers, subs, scores, churned)
    later_c = pd.concat([customers, pd.DataFrame({
        "customer_id": ["z0", "z1"], "signup_date": pd.to_datetime(["2024-07-01",
                                                                    "2024-07-20"])})])
    s = subs.copy()
    opened = (s["outcome"] == "open") & (s["period_end"] >= pd.Timestamp(AS_OF))
    odd = s["customer_id"].str[-1].isin(list("13579"))
    s.loc[opened & odd, "outcome"] = "cancelled"
    s.loc[opened & ~odd, "outcome"] = "renewed"
    nxt = s[opened & ~odd].assign(period_start=lambda x: x["period_end"],
                                  period_end=lambda x: x["period_end"] + pd.Timedelta(days=30),
                                  outcome="open")
    s.loc[s["customer_id"] == "g0000", "outcome"] = "lapsed"  # known on Jul 8
    new = pd.DataFrame({"customer_id": ["z0", "z1"],
                        "period_start": pd.to_datetime(["2024-07-01", "2024-07-20"]),
                        "period_end": pd.to_datetime(["2024-07-31", "2024-08-19"]),
                        "outcome": "cancelled", "plan": "p", "fee": 100.0})
    later_s = pd.concat([s, nxt, new], ignore_index=True).astype(
        {"period_start": "datetime64[s]", "period_end": "datetime64[s]"})
    assert len(later_s) > len(subs) and (later_s["outcome"] != subs["outcome"].reindex(
        later_s.index)).sum() > 300
    pd.testing.assert_frame_equal(_compare(later_c, later_s, scores, churned), seen)
    order = np.random.default_rng(3).permutation(len(scores))
    pd.testing.assert_frame_equal(
        _compare(customers, subs, scores.iloc[order].reset_index(drop=True), churned[order]),
        seen)


def test_mistakes_are_refused(export):
    customers, subs, scores, churned = export
    with pytest.raises(ValueError, match="3 outcomes for 651"):
        _compare(customers, subs, scores, churned[:3])
    y = churned.astype(float)
    y[5] = np.nan
    with pytest.raises(ValueError, match="1 missing"):
        _compare(customers, subs, scores, y)
    stranger = pd.concat([scores, pd.DataFrame({"customer_id": ["nobody"],
                                                "churn_probability": [0.5]})])
    with pytest.raises(ValueError, match="not at risk"):
        _compare(customers, subs, stranger, np.append(churned, 0))


# --------------------------------------------------------------------------- a simulated world


@pytest.fixture(scope="module")
def replayed(params, tmp_path_factory):
    """A 1,500-customer world over 600 days, its last judged week replayed (the export cut
    there, a quick model trained on the cut, the cut scored), with what followed from the full
    export, as the backtest's judging loop computes it."""
    from pipeline.stages import ingest as ingest_stage
    from pipeline.stages import replay as replay_stage
    from pipeline.stages import score as score_stage
    from tests.conftest import build_world

    out = tmp_path_factory.mktemp("cohort-check")
    world = build_world(params, out / "world", customers=1500, days=600)
    paths = dataclasses.replace(params.paths, raw=str(world / "export"), sim=str(world),
                                interim=str(out / "interim"), weekly=str(out / "weekly"))
    ingest_stage.run(params.data, paths, Path(paths.raw))
    quick = dataclasses.replace(params.train, oof_folds=2, rounds=300, early_stopping=20,
                                hist_gradient_boosting=None)
    config = replay_stage.ReplayConfig(params.labels, params.features, quick, params.score,
                                       params.report)
    [week] = replay_stage.run(1, config, paths, paths, log=lambda m: None)
    day = dt.date.fromisoformat(week.as_of)
    data = score_stage.read_data(paths)
    cut = score_stage.read_data(replay_stage.week_paths(paths, Path(week.folder).parents[2]))
    scores = pd.read_parquet(Path(week.folder) / score_stage.SCORES)
    horizon, grace = params.labels.horizon_days, params.labels.grace_days
    runs = obs.runs(data.customers, data.subs, view=day, grace_days=grace)
    matched = scores[["customer_id"]].merge(obs.scoring_points(runs, day=day),
                                            on="customer_id", how="left")
    churned = obs.label(matched, obs.runs(data.customers, data.subs, view=data.manifest.as_of,
                                          grace_days=grace),
                        as_of=data.manifest.as_of, horizon_days=horizon, grace_days=grace)
    return dict(day=day, data=data, cut=cut, scores=scores, runs=runs, horizon=horizon,
                grace=grace, churned=churned.to_numpy(float))


def test_on_a_replayed_week_all_three_land_near_the_churners(params, replayed):
    r = replayed
    data, scores, day = r["data"], r["scores"], r["day"]
    kw = dict(as_of=day, days=r["horizon"], calendar=data.manifest.calendar,
              grace_days=r["grace"], config=params.report)
    t = cohort_check.compare(scores, data.customers, data.subs, r["churned"], runs=r["runs"],
                             **kw)
    # fitted only on what was known on the day: the export cut there gives the same table
    cut = cohort_check.compare(scores, r["cut"].customers, r["cut"].subs, r["churned"], **kw)
    pd.testing.assert_frame_equal(t, cut)
    assert len(r["cut"].customers) < len(data.customers)
    every = t.set_index("cohort").loc[cohort_check.ALL]
    assert every.customers == len(scores) > 500 and every.churned > 60
    assert every.model_expected == pytest.approx(scores["churn_probability"].sum())
    k = every.churned
    # the model and the sBG within a third of what happened (about 3 binomial sd here)
    assert abs(every.model_error) < k / 3, every.to_dict()
    assert abs(every.sbg_error) < k / 3, every.to_dict()
    # Kaplan-Meier carried forward forecasts no churn at a renewal its cohort has not reached
    # yet (each cohort's furthest customers): it undercounts, but not wildly
    assert 0.4 * k < every.km_expected < every.sbg_expected, every.to_dict()
    # the fits are the weekly scoring's own: the same basis as each customer's value
    pc = cohort_check.customer_probabilities(scores["customer_id"], data.customers, data.subs,
                                             **kw)
    assert (pc["basis"].to_numpy() == scores["value_basis"].to_numpy()).all()
    assert {"cohort", "pooled"} <= set(pc["basis"])
    # where the sBG and Kaplan-Meier see the same renewals (young cohorts: the pooled fit, at
    # the first renewals), they agree
    young = pc[(pc["basis"] == "pooled") & (pc["renewals_survived"] <= 1)]
    assert len(young) > 100
    assert young["p_sbg"].mean() == pytest.approx(young["p_km"].mean(), rel=0.15)
