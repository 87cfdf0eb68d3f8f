"""The product's feature table equals an independent pandas implementation of the catalogue's
meanings (`tests/features/reference.py`) on the 4,000-customer world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FEATURES
from tests.features.reference import POINT_COLUMNS, reference_features, vocabulary

# integer-valued by meaning (counts, days, codes, flags): must be exactly equal
EXACT = {
    "window_days", "usage_messages", "usage_active_days", "usage_days_since_last",
    "usage_longest_gap", "charge_topups", "charge_days_since_last", "tickets_billing",
    "tickets_delivery", "tickets_technical", "tickets_account", "tickets_other", "tickets_30",
    "tickets_problem_30", "tickets_unresolved", "tickets_days_since_last", "referrals_window",
    "referrals_ever", "nps_last", "nps_band", "nps_answers", "plan_code", "days_to_renewal",
    "renewals_in_horizon", "tenure_days", "customer_age_days", "periods_paid", "reactivated",
    "channel_code", "was_referred", "f90_topups", "f90_tickets",
}


@pytest.fixture(scope="module")
def both(params, built):
    product = pd.read_parquet(built.features_table)
    plans, channels = vocabulary(built.interim)
    reference = reference_features(
        built.interim, built.observations_table, window_days=params.features.window_days,
        recent_days=params.features.recent_days, horizon_days=params.labels.horizon_days,
        plans=plans, channels=channels)
    return product, reference


def test_same_points_and_columns(both):
    product, reference = both
    assert len(product) > 10_000
    assert list(reference.columns) == list(product.columns) == [*POINT_COLUMNS, *FEATURES]
    pd.testing.assert_frame_equal(reference[POINT_COLUMNS], product[POINT_COLUMNS])


def test_every_kind_of_point_is_covered(both):
    product, _ = both
    kinds = product["kind"].value_counts()
    assert {"young", "early_life", "ongoing", "scoring"} <= set(kinds.index)
    assert (product["reactivated"] == 1).sum() > 0  # returns after a churn are in the world


def test_dtypes_match(both):
    product, reference = both
    assert dict(reference[list(FEATURES)].dtypes) == dict(product[list(FEATURES)].dtypes)


@pytest.mark.parametrize("name", FEATURES)
def test_feature_equals_reference(both, name):
    product, reference = both
    got, want = product[name].to_numpy(), reference[name].to_numpy()
    # nulls in the same places (only nps_last may be null)
    missing = pd.isna(got)
    assert (missing == pd.isna(want)).all(), f"{name}: nulls differ"
    got, want = got[~missing].astype("float64"), want[~missing].astype("float64")
    bad = got != want if name in EXACT else ~np.isclose(got, want, rtol=1e-9, atol=0.0)
    if bad.any():
        rows = product.loc[~missing].loc[bad, ["customer_id", "t", "kind"]].head(5)
        rows = rows.assign(product=got[bad][:5], reference=want[bad][:5])
        pytest.fail(f"{name}: {bad.sum()} of {len(bad)} points differ, e.g.\n{rows}")
