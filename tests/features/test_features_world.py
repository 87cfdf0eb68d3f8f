"""The feature table on a simulated world: complete, deterministic, and the signals point the
way the domain notes say (seed 003)."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.catalogue import FEATURES
from pipeline.stages import features as features_stage


@pytest.fixture(scope="module")
def table(built):
    return pd.read_parquet(built.features_table)


@pytest.fixture(scope="module")
def labelled(table):
    """Labelled points that face a renewal or wait on one: the only ones whose label can be 1."""
    return table[table["label"].notna() & ((table["renewals_in_horizon"] >= 1)
                                           | (table["days_past_renewal"] > 0))]


def test_every_observation_point_has_features(built, table):
    points = pd.read_parquet(built.observations_table)
    assert len(table) == len(points) > 10_000
    assert not table.duplicated(["customer_id", "t"]).any()
    assert list(table.columns[:8]) == ["customer_id", "t", "kind", "run", "run_start", "state",
                                       "label", "truth"]
    assert list(table.columns[8:]) == list(FEATURES)
    assert table[list(FEATURES)].drop(columns=["nps_last"]).notna().all().all()


def test_oracle_auc_of_the_early_life_population(table):
    early = table[table["label"].notna() & (table["kind"] == "early_life")]
    assert early["truth"].notna().all()
    auc = roc_auc_score(early["label"], early["truth"])
    assert 0.7 < auc < 0.9, auc


def _churn(frame, mask):
    assert mask.sum() >= 50, "too few points to compare"
    return frame.loc[mask, "label"].mean()


def test_fading_and_irregular_usage_raise_churn(labelled):
    share = labelled["usage_recent_active_share"]
    assert _churn(labelled, share < share.quantile(0.25)) > 2 * _churn(
        labelled, share > share.quantile(0.75))
    assert _churn(labelled, labelled["usage_trend"] < -0.3) > 1.1 * _churn(
        labelled, labelled["usage_trend"] > 0.3)


def test_problem_tickets_raise_churn(labelled):
    problems = labelled["tickets_problem_30"]
    assert _churn(labelled, problems > 0) > 1.1 * _churn(labelled, problems == 0)


def test_low_topups_raise_churn(labelled):
    assert _churn(labelled, labelled["charge_topups"] == 0) > 1.2 * _churn(
        labelled, labelled["charge_topups"] >= 2)


def test_referrals_and_promoters_lower_churn(labelled):
    assert _churn(labelled, labelled["referrals_ever"] > 0) < 0.85 * _churn(
        labelled, labelled["referrals_ever"] == 0)
    assert _churn(labelled, labelled["nps_last"] >= 9) < 0.7 * _churn(
        labelled, labelled["nps_last"] <= 6)


def test_features_are_byte_identical_across_runs(params, built, tmp_path):
    import dataclasses
    import shutil

    copy = dataclasses.replace(built, observations=str(tmp_path / "observations"),
                               features=str(tmp_path / "features"))
    shutil.copytree(built.observations, copy.observations)
    features_stage.run(params.features, params.labels, copy)
    assert copy.features_table.read_bytes() == built.features_table.read_bytes()
    assert copy.feature_meta.read_bytes() == built.feature_meta.read_bytes()
