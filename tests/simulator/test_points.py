"""The simulator's truth sits exactly on the product's observation points (customers at risk
at t, features/observations.py), late payers pay inside the grace window, and the truth is
honest against the labels the product derives from the export."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features import observations as obs
from features.config import LabelConfig
from simulator.config import SimulateConfig
from simulator.engine import SimSummary, simulate
from tests.simulator.worlds import WORLDS, label_config, simulate_config

KINDS = ("young", "early_life", "ongoing")


class ListSink:
    def __init__(self) -> None:
        self.batches: dict[str, list[pa.Table]] = defaultdict(list)

    def append(self, table: str, batch: pa.Table) -> None:
        self.batches[table].append(batch)

    def frame(self, name: str, dates: tuple[str, ...] = ()) -> pd.DataFrame:
        df = pa.concat_tables(self.batches[name]).to_pandas()
        for col in dates:
            df[col] = pd.to_datetime(df[col])
        return df


@dataclasses.dataclass
class World:
    summary: SimSummary
    labels: LabelConfig
    sim: SimulateConfig
    customers: pd.DataFrame
    subs: pd.DataFrame
    truth: pd.DataFrame
    runs: pd.DataFrame
    points: pd.DataFrame


def _world(path: str = "params.yaml", customers: int = 600, days: int = 400,
           **world) -> World:
    base = simulate_config(path)
    sim = dataclasses.replace(base, customers=customers, days=days, truth_samples=32,
                              world=dataclasses.replace(base.world, **world))
    labels = label_config(path)
    sink = ListSink()
    summary = simulate(sim, labels, sink)
    cust = sink.frame("customers", ("signup_date",))
    subs = sink.frame("subscriptions", ("period_start", "period_end"))
    truth = sink.frame("truth", ("t",))
    runs = obs.runs(cust, subs, view=summary.as_of, grace_days=labels.grace_days)
    points = obs.points(runs, as_of=summary.as_of, every_days=labels.every_days,
                        min_tenure_days=labels.min_tenure_days,
                        early_life_days=labels.early_life_days,
                        grace_days=labels.grace_days)
    return World(summary, labels, sim, cust, subs, truth, runs, points)


def _keys(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["customer_id"].tolist(), frame["t"].astype("datetime64[ns]").tolist(),
                   frame["kind"].tolist(), strict=True))


@pytest.fixture(scope="module")
def small() -> World:
    return _world()


@pytest.mark.parametrize("path", WORLDS)
def test_truth_points_are_exactly_the_products_points(path):
    """The key test: the simulator's (customer, t, kind) are the product's, as computed from
    the export alone (integer ids in the default world and c, string ids in b)."""
    w = _world(path)
    ours, theirs = _keys(w.truth), _keys(w.points)
    assert ours == theirs, (sorted(ours - theirs)[:5], sorted(theirs - ours)[:5])
    assert w.truth.groupby(["customer_id", "t"]).size().max() == 1
    assert set(w.truth["kind"]) == {*KINDS, "scoring"}


def test_due_today_and_pending_points_exist_and_pending_is_no_giveaway(small):
    """Points fall on renewal days and inside the grace window; a pending renewal is a refusal
    (truth exactly 1) or a late payer (truth below 1)."""
    pts = small.points.assign(state=obs.state(small.points, small.subs))
    pts = pts.merge(small.truth.rename(columns={"t": "t_"}).assign(
        t=lambda f: f["t_"].astype(pts["t"].dtype)).drop(columns="t_"),
        on=["customer_id", "t", "kind"])
    assert len(pts) == len(small.points)
    states = pts["state"].value_counts()
    assert states.get("renewal_due", 0) > 20 and states.get("pending", 0) > 20
    pending = pts.loc[pts["state"] == "pending", "truth"]
    assert (pending == 1.0).any() and (pending < 1.0).any()
    # truth is exactly 1 only for a refusal already made (the run's churn before t: pending,
    # or a reactivation started inside the grace window of the old run); never on a renewal
    # still to decide
    churn = pts.merge(small.runs, on=["customer_id", "run"], how="left")["churn"]
    refused = (churn < pts["t"]).to_numpy()
    assert (pts.loc[refused, "truth"] == 1.0).all()
    # or a lapse the export cannot show yet (period_end + grace_days >= the export day)
    as_of, grace = pd.Timestamp(small.summary.as_of), pd.Timedelta(days=small.labels.grace_days)
    unknown = (churn.isna() & (pts["t"] > as_of - grace)).to_numpy()
    assert (pts.loc[~refused & ~unknown, "truth"] < 1.0).all()
    assert (pts.loc[pts["state"] == "pending", "truth"] < 1.0).mean() > 0.3


def _gaps(subs: pd.DataFrame) -> pd.DataFrame:
    subs = subs.sort_values(["customer_id", "period_start"], kind="stable")
    nxt = subs.groupby("customer_id")["period_start"].shift(-1)
    return subs.assign(gap=(nxt - subs["period_end"]).dt.days)


def test_late_payers_pay_inside_the_business_grace_window(small):
    w = small.sim.world
    renewed = _gaps(small.subs).query("outcome == 'renewed'")
    assert renewed["gap"].notna().all()  # a renewal known in the export has its next period
    late = renewed["gap"] > 0
    assert renewed.loc[late, "gap"].between(1, w.business_grace_days).all()
    assert set(renewed.loc[late, "gap"]) == set(range(1, w.business_grace_days + 1))
    share = late.mean()
    se = math.sqrt(w.late_payer_share * (1 - w.late_payer_share) / len(renewed))
    assert abs(share - w.late_payer_share) < 4 * se + 0.01, share
    assert small.summary.late_renewals >= late.sum()
    # nothing starts on or after the export day; a late payer still waiting there shows an
    # open period that has ended, which the product keeps at risk (not a derived lapse)
    as_of = pd.Timestamp(small.summary.as_of)
    assert (small.subs["period_start"] < as_of).all()


def test_a_late_payer_waiting_at_the_export_day_is_open_and_at_risk():
    w = _world(customers=800, days=300, late_payer_share=1.0)
    as_of = pd.Timestamp(w.summary.as_of)
    last = _gaps(w.subs).groupby("customer_id").tail(1)
    waiting = last[(last["outcome"] == "open") & (last["period_end"] < as_of)]
    assert len(waiting) > 5
    scoring = set(w.truth.loc[w.truth["kind"] == "scoring", "customer_id"])
    assert set(waiting["customer_id"]) <= scoring


def test_no_late_payers_unless_the_world_has_them():
    w = _world(customers=300, days=300, late_payer_share=0.0)
    renewed = _gaps(w.subs).query("outcome == 'renewed'")
    assert (renewed["gap"] == 0).all() and w.summary.late_renewals == 0
    assert _keys(w.truth) == _keys(w.points)


def test_realised_labels_match_mean_truth_per_kind():
    """On the labelled points (the product's labels, as of the export day) the mean truth is
    the realised churn rate within noise; the standard error is clustered by customer, as one
    customer's points overlap in time."""
    w = _world(customers=3000, days=500)
    pts = w.points[w.points["kind"].isin(KINDS)].copy()
    pts["label"] = obs.label(pts, w.runs, as_of=w.summary.as_of,
                             horizon_days=w.labels.horizon_days, grace_days=w.labels.grace_days)
    pts = pts[pts["label"].notna()]
    truth = w.truth.assign(t=w.truth["t"].astype(pts["t"].dtype))
    pts = pts.merge(truth, on=["customer_id", "t", "kind"], validate="one_to_one")
    for kind in KINDS:
        grp = pts[pts["kind"] == kind]
        assert len(grp) > 300, kind
        resid = (grp["label"].astype(float) - grp["truth"]).groupby(grp["customer_id"]).sum()
        se = math.sqrt((resid**2).sum()) / len(grp)
        gap = abs(grp["truth"].mean() - grp["label"].astype(float).mean())
        assert gap < 3 * se + 0.005, (kind, gap, se)
    high = pts["truth"] >= pts["truth"].quantile(0.9)
    low = pts["truth"] <= pts["truth"].quantile(0.1)
    assert pts.loc[high, "label"].mean() > 3 * pts.loc[low, "label"].mean()


def test_phase_comes_from_the_exported_ids():
    """String ids and integer ids give different phases, each the product's own."""
    cfg = simulate_config()
    for string_ids in (False, True):
        sim = dataclasses.replace(cfg, customers=200, days=200, truth_samples=8,
                                  string_ids=string_ids)
        sink = ListSink()
        summary = simulate(sim, label_config(), sink)
        cust = sink.frame("customers", ("signup_date",))
        subs = sink.frame("subscriptions", ("period_start", "period_end"))
        labels = label_config()
        runs = obs.runs(cust, subs, view=summary.as_of, grace_days=labels.grace_days)
        points = obs.points(runs, as_of=summary.as_of, every_days=labels.every_days,
                            min_tenure_days=labels.min_tenure_days,
                            early_life_days=labels.early_life_days,
                        grace_days=labels.grace_days)
        assert _keys(sink.frame("truth", ("t",))) == _keys(points)
        assert isinstance(cust["customer_id"].iloc[0], str) == string_ids
        assert len(np.unique(obs.phase(cust["customer_id"], labels.every_days))) > 1
