"""sBG against the published numbers of Fader and Hardie (2007, 2010)."""

from __future__ import annotations

import numpy as np
import pytest

from retention import sbg

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]

CASES = {
    "regular": (REGULAR, 0.704, 1.182, -1680.27, [220.1, 204.4, 191.2, 179.9, 170.0], 2.964, 5.894),
    "high end": (HIGH_END, 0.668, 3.806, -1611.16, [460.4, 435.8, 414.2, 395.1, 378.0], 5.4145, 6.897),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    survivors, *expected = CASES[request.param]
    return sbg.fit_survivors(survivors), expected


def test_maximum_likelihood(case):
    fit, (alpha, beta, ll, *_rest) = case
    assert fit.alpha == pytest.approx(alpha, abs=1e-3)
    assert fit.beta == pytest.approx(beta, abs=1e-3)
    assert round(fit.log_likelihood, 2) == ll
    assert (fit.customers, fit.periods) == (1000, 7)


def test_projected_survivors_years_8_to_12(case):
    fit, (*_head, projected, _n1, _n5) = case
    assert np.round(1000 * sbg.project(fit, 5), 1).tolist() == projected


def test_derl_at_ten_percent(case):
    fit, (*_head, n1, n5) = case
    assert sbg.derl(fit.alpha, fit.beta, 1, 0.10) == pytest.approx(n1, abs=1e-3)
    assert sbg.derl(fit.alpha, fit.beta, 5, 0.10) == pytest.approx(n5, abs=1e-3)
    value = sbg.derl_value(50.0, fit.alpha, fit.beta, 1, 0.10)
    assert value == pytest.approx(50 * n1, abs=0.05)


def test_derl_without_discount_grows_with_tenure():
    """Survivors are the loyal ones: residual lifetime rises with n (the sBG's point)."""
    d = sbg.derl(0.704, 1.182, np.arange(1, 6), 0.10)
    assert np.all(np.diff(d) > 0)


def test_probabilities_add_up():
    t = np.arange(1, 200)
    p = sbg.churn_probability(0.7, 1.2, t)
    assert np.allclose(1 - np.cumsum(p), sbg.survival(0.7, 1.2, t))


def test_no_churn_cannot_be_fitted():
    with pytest.raises(ValueError, match="no churn"):
        sbg.fit([0, 0, 0], [0, 0, 0, 100])
