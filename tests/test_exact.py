"""simulator/exact.py: CPU-independent math agrees with numpy's, and rounding is f"{x:.9g}"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common import exact


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(5).normal(0.0, 3.0, 100_000)


def test_exp_log_log1p_sigmoid_match_numpy(x):
    np.testing.assert_allclose(exact.exp(x), np.exp(x), rtol=1e-14)
    u = np.abs(x) + 1e-3
    np.testing.assert_allclose(exact.log(u), np.log(u), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(exact.log1p(u), np.log1p(u), rtol=1e-14)
    np.testing.assert_allclose(exact.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-14)
    assert exact.exp(0.0) == 1.0 and exact.log(1.0) == 0.0
    assert exact.log(0.0) == -np.inf and np.isnan(exact.log(-1.0))
    assert exact.exp(-800.0) == 0.0 and exact.exp(800.0) == np.inf
    assert exact.sigmoid(-800.0) == 0.0 and exact.sigmoid(800.0) == 1.0


def test_exp_on_scalars_is_math_exp():
    for v in (-30.0, -1.5, 0.3, 1.0, 12.25):
        assert exact.exp(v) == pytest.approx(math.exp(v), rel=1e-14)


def test_power_matches_numpy_and_its_edge_cases():
    rho = 1.0 - 1.0 / 60
    steps = np.arange(0, 2000)
    np.testing.assert_allclose(exact.power(rho, steps), rho ** steps, rtol=1e-13)
    assert exact.power(rho, 0) == 1.0 and exact.power(0.0, 0) == 1.0  # numpy: 0 ** 0 = 1
    a = np.array([0.0, 0.0, 2.0, -2.0, -2.0, -2.0, -8.0, 1.0])
    b = np.array([2.0, -1.0, 0.5, 3.0, 2.0, 0.5, 0.0, 1e6])
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_allclose(exact.power(a, b), np.power(a, b), rtol=1e-14)
    grid = exact.power(np.array([[0.5], [0.9]]), np.array([1, 2, 3]))  # broadcasts
    np.testing.assert_allclose(grid, [[0.5, 0.25, 0.125], [0.9, 0.81, 0.729]], rtol=1e-15)


def _reference(values: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.9g}") for v in values.tolist()])


def test_round_sig_is_string_rounding():
    rng = np.random.default_rng(11)
    values = np.concatenate([
        rng.normal(size=2000) * 10.0 ** rng.integers(-300, 300, 2000),  # every magnitude
        rng.random(2000),  # probabilities
        -rng.random(2000),
        np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, 2.2250738585072014e-308,
                  1.7976931348623157e308, -1.7976931348623157e308, 0.5, 1.0, 0.1, 1e-9,
                  123456789.5, 1234567895.0, 0.1234567895, 0.999999999949, 1.0000000005]),
    ])
    got, want = exact.round_sig(values), _reference(values)
    assert got.dtype == np.float64 and got.shape == values.shape
    assert np.array_equal(got, want, equal_nan=True)
    # zeros keep their sign, NaN stays NaN, infinities stay
    zeros = exact.round_sig(np.array([0.0, -0.0]))
    assert list(np.signbit(zeros)) == [False, True]
    # whole values with 9 digits or fewer, and values already rounded, do not change
    assert np.array_equal(exact.round_sig(want), want, equal_nan=True)
    assert exact.round_sig(123456789.0) == 123456789.0
    assert exact.round_sig(0.1234567894) == 0.123456789
    assert exact.round_sig(-0.0001234567896) == -0.00012345679


def test_round_sig_keeps_shape_and_types():
    a = np.arange(12.0).reshape(3, 4) / 7
    r = exact.round_sig(a)
    assert r.shape == (3, 4) and np.array_equal(r.ravel(), _reference(a.ravel()))
    assert exact.round_sig(np.array([])).shape == (0,)
    assert type(exact.round_sig(np.float64(2 / 3))) is float
    assert exact.round_sig(2 / 3) == 0.666666667
    assert exact.round_sig(np.array([1, 2]) / 3, digits=3).tolist() == [0.333, 0.667]


def test_round_floats_walks_json_like_values():
    got = exact.round_floats({"a": 1 / 3, "b": [2 / 3, np.float64(1 / 7), 5, "x", None, True],
                              "c": {"d": (1e-12 / 3,)}, "e": float("nan")})
    assert got["a"] == 0.333333333 and got["b"][:2] == [0.666666667, 0.142857143]
    assert got["b"][2:] == [5, "x", None, True] and type(got["b"][2]) is int
    assert got["c"] == {"d": [3.33333333e-13]} and math.isnan(got["e"])
