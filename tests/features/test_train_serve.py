"""Scoring meets nothing training never saw: every state a scoring point can be in occurs
among the labelled training points, in about the same share."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def points(built):
    return pd.read_parquet(built.observations_table)


def test_every_scoring_state_is_in_training(points, params):
    labelled = points[points["label"].notna() & points["kind"].isin(params.train.kinds)]
    scoring = points[points["kind"] == "scoring"]
    for state in scoring["state"].unique():
        assert (labelled["state"] == state).sum() >= 20, state
    assert {"renewal_due", "pending", "in_period"} <= set(labelled["state"])
    assert (labelled["run"] > 0).sum() >= 20  # reactivated
    assert (labelled["kind"] == "young").sum() >= 100
    # pending renewals end both ways: a pending point is no giveaway of churn
    pending = labelled[labelled["state"] == "pending"]
    assert 0.05 < pending["label"].mean() < 0.95


def test_renewal_due_share_in_training_is_like_scoring(points, params):
    """The grid no longer falls on the billing cycle. The early-life point is left out: it is
    day 90 for everyone by definition (seed 003), the last day of a third 30-day period."""
    labelled = points[points["label"].notna() & points["kind"].isin(["young", "ongoing"])]
    scoring = points[points["kind"] == "scoring"]
    train_share = (labelled["state"] == "renewal_due").mean()
    score_share = (scoring["state"] == "renewal_due").mean()
    assert score_share > 0
    assert 1 / 1.5 <= train_share / score_share <= 1.5, (train_share, score_share)


def test_realised_churn_matches_the_truth_per_kind(points, params):
    labelled = points[points["label"].notna() & points["truth"].notna()]
    for kind, grp in labelled.groupby("kind"):
        rate, truth = grp["label"].mean(), grp["truth"].mean()
        se = (truth * (1 - truth) / len(grp)) ** 0.5
        assert abs(rate - truth) < 4 * se + 0.005, (kind, rate, truth, len(grp))
    assert labelled["truth"].notna().all()
    assert len(labelled) == points["label"].notna().sum()  # every labelled point has truth
