"""PSI against a frozen reference: the bins, the arithmetic, the law under no change, the alarms."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from scoring.drift import EPSILON, Reference, build_reference, psi

N_REF, M_NEW = 20_000, 2_000


def _population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Five kinds of feature: continuous, a lognormal count, a zero-inflated count, integer
    codes (one of them rare) and a continuous one with 10 % missing."""
    zero = rng.random(n) < 0.6
    spend = rng.normal(50.0, 10.0, n)
    spend[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "score": rng.normal(0.0, 1.0, n),
        "messages": np.round(rng.lognormal(3.0, 0.8, n)),
        "tickets": np.where(zero, 0, 1 + rng.poisson(1.5, n)),
        "plan": rng.choice(4, size=n, p=[0.5, 0.3, 0.17, 0.03]),
        "spend": spend,
    })


FEATURES, CATEGORICAL = ["score", "messages", "tickets", "plan", "spend"], ["plan"]


@pytest.fixture(scope="module")
def reference() -> Reference:
    return build_reference(_population(np.random.default_rng(7), N_REF), FEATURES, CATEGORICAL)


def test_hand_computed_psi_on_a_tiny_example():
    ref = build_reference(pd.DataFrame({"x": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]}), ["x"], [])
    x = ref.feature("x")
    # deciles 1,1,2,2,3,3,4,4,5: edges 1..5, each value bin holds 2 of 10, nothing above 5
    assert x.edges == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert x.labels() == ["(-inf, 1]", "(1, 2]", "(2, 3]", "(3, 4]", "(4, 5]", "(5, inf)",
                          "missing"]
    assert x.shares == (0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0)
    assert (x.n, x.median) == (10, 3.0)

    week = pd.DataFrame({"x": [1, 1, 1, 2, 2, 3, 4, 5, 5, np.nan]})
    # shares .3 .2 .1 .1 .2 | 0 | .1 missing; (5, inf) is empty in both and left out
    expected = (0.3 - 0.2) * math.log(0.3 / 0.2) + 0.0 + 2 * (0.1 - 0.2) * math.log(0.1 / 0.2) \
        + 0.0 + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    row = psi(ref, week).iloc[0]
    assert row["psi"] == pytest.approx(expected, rel=1e-8)
    assert (row["bins"], row["n_ref"], row["n_new"]) == (6, 10, 10)
    assert row["p_value"] == pytest.approx(chi2.sf(expected / (1 / 10 + 1 / 10), 5), rel=1e-8)
    # PSI 0.87 is big, but ten rows against ten cannot tell it from chance (p = 0.5)
    assert row["psi"] >= 0.1 and row["p_value"] > 0.4 and not row["alarm"]


def test_no_change_rarely_alarms_and_psi_follows_its_null_law(reference):
    rng = np.random.default_rng(11)
    runs = [psi(reference, _population(rng, M_NEW)) for _ in range(250)]
    alarms = np.mean([r["alarm"].any() for r in runs])
    assert alarms < 0.01  # family-wise, over the five features
    scale = 1 / N_REF + 1 / M_NEW
    table = pd.concat(runs)
    for name, rows in table.groupby("feature"):
        # mean of psi / (1/n + 1/m) against the chi-square's mean B - 1
        assert (rows["psi"] / scale).mean() == pytest.approx((rows["bins"] - 1).mean(), rel=0.15), \
            name
    # the p-values are honest: about 5 % of them under 0.05
    assert 0.025 < (table["p_value"] < 0.05).mean() < 0.08


def test_thirty_percent_drop_in_a_lognormal_count_alarms(reference):
    rng = np.random.default_rng(3)
    week = _population(rng, M_NEW)
    assert not psi(reference, week)["alarm"].any()
    week["messages"] = np.round(0.7 * rng.lognormal(3.0, 0.8, M_NEW))
    result = psi(reference, week).set_index("feature")
    assert result.loc["messages", "alarm"] and result.loc["messages", "psi"] > 0.15
    assert not result.drop(index="messages")["alarm"].any()


def test_a_wide_feature_needs_more_than_significance():
    """PSI of a drop by a factor f is about (log f / sd of log x)**2: the same 30 % drop in a
    count with log-sd 1.3 is highly significant but smaller than min_psi."""
    rng = np.random.default_rng(5)
    ref = build_reference(pd.DataFrame({"m": np.round(rng.lognormal(3.0, 1.3, N_REF))}), ["m"],
                          [])
    week = pd.DataFrame({"m": np.round(0.7 * rng.lognormal(3.0, 1.3, M_NEW))})
    row = psi(ref, week).iloc[0]
    assert row["p_value"] < 1e-10 and 0.04 < row["psi"] < 0.1 and not row["alarm"]
    assert psi(ref, week, min_psi=0.05).iloc[0]["alarm"]


def test_zero_inflated_count_gets_fewer_bins(reference):
    tickets = reference.feature("tickets")
    # six of the nine deciles are 0: one bin (-inf, 0] holds the zeros, the counts above split
    # at whole numbers (no bin between 1 and 2), five value bins instead of ten
    assert tickets.edges == (0.0, 1.0, 2.0, 3.0)
    assert tickets.shares[0] == pytest.approx(0.6, abs=0.01)
    assert len(tickets.shares) == 6 and tickets.shares[-1] == 0.0  # and the missing bin
    rng = np.random.default_rng(8)
    week = _population(rng, M_NEW)
    week["tickets"] = np.where(rng.random(M_NEW) < 0.75, 0, 1 + rng.poisson(1.5, M_NEW))
    result = psi(reference, week).set_index("feature")
    assert result.loc["tickets", "alarm"]
    assert result.loc["tickets", "bins"] == 5  # the missing bin is empty in both: left out


def test_categorical_new_code_goes_to_other():
    ref = build_reference(pd.DataFrame({"c": [0] * 50 + [1] * 30 + [2] * 20}), ["c"], ["c"])
    c = ref.feature("c")
    assert c.codes == (0, 1, 2) and c.labels() == ["0", "1", "2", "other", "missing"]
    assert c.shares == (0.5, 0.3, 0.2, 0.0, 0.0) and c.median == 0.0  # the most common code
    week = pd.DataFrame({"c": [0] * 45 + [1] * 30 + [2] * 15 + [7] * 6 + [9] * 4})
    assert c.bin_counts(week["c"]).tolist() == [45, 30, 15, 10, 0]
    expected = (0.45 - 0.5) * math.log(0.45 / 0.5) + (0.15 - 0.2) * math.log(0.15 / 0.2) \
        + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    row = psi(ref, week).iloc[0]
    assert row["psi"] == pytest.approx(expected, rel=1e-8) and row["bins"] == 4
    assert row["alarm"]  # a tenth of the week in codes never seen
    with pytest.raises(ValueError, match="integer codes"):
        build_reference(pd.DataFrame({"c": [0.5, 1.0]}), ["c"], ["c"])


def test_missing_values(reference):
    spend = reference.feature("spend")
    assert spend.shares[-1] == pytest.approx(0.1, abs=0.01)
    assert spend.median == pytest.approx(50.0, abs=0.5)  # of the values present
    assert sum(spend.shares[:-1]) == pytest.approx(0.9, abs=0.01)
    rng = np.random.default_rng(4)
    week = _population(rng, M_NEW)
    week.loc[rng.random(M_NEW) < 0.25, "spend"] = np.nan
    assert psi(reference, week).set_index("feature").loc["spend", "alarm"]

    # never missing in the reference: the missing bin is there, empty, and a week's missing
    # values land in it (pd.NA of a nullable column included)
    ref = build_reference(pd.DataFrame({"k": pd.array(range(100), dtype="Int64")}), ["k"], [])
    assert ref.feature("k").shares[-1] == 0.0
    week = pd.DataFrame({"k": pd.array([*range(0, 100, 2), *[None] * 5], dtype="Int64")})
    assert ref.feature("k").bin_counts(week["k"])[-1] == 5
    row = psi(ref, week).iloc[0]
    assert np.isfinite(row["psi"]) and row["bins"] == 11


def test_round_trip_and_the_same_json_on_two_builds(reference):
    text = json.dumps(reference.to_dict(), sort_keys=True)
    again = Reference.from_dict(json.loads(text))
    assert again == reference
    week = _population(np.random.default_rng(9), M_NEW)
    pd.testing.assert_frame_equal(psi(again, week), psi(reference, week))
    # another build, from the rows in another order: the same bytes
    frame = _population(np.random.default_rng(7), N_REF).sample(frac=1.0, random_state=1)
    rebuilt = build_reference(frame, FEATURES, CATEGORICAL)
    assert json.dumps(rebuilt.to_dict(), sort_keys=True) == text
    floats = [v for f in reference.features for v in (*f.edges, *f.shares)]
    assert all(float(f"{v:.9g}") == v for v in floats)


def test_bad_inputs():
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="not among the features"):
        build_reference(frame, ["a"], ["b"])
    with pytest.raises(ValueError, match=r"no column\(s\) \['b'\]"):
        build_reference(frame, ["a", "b"], [])
    ref = build_reference(frame, ["a"], [])
    with pytest.raises(ValueError, match="alpha"):
        psi(ref, frame, alpha=0.0)
    empty = psi(ref, frame.iloc[:0]).iloc[0]
    assert np.isnan(empty["psi"]) and not empty["alarm"] and empty["n_new"] == 0
