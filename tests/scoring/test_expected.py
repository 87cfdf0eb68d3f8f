"""Expected performance from the probabilities alone, against brute force and simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scoring.expected import expected, expected_auc


def _brute(p: np.ndarray) -> float:
    wins = pairs = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        w = p[i] * (1 - p[j])
        pairs += w
        wins += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return wins / pairs


@pytest.mark.parametrize("p", [[0.1, 0.5, 0.5, 0.9], [0.2, 0.2, 0.2], [0.05, 0.3, 0.7, 0.7, 0.99],
                               [0.0, 1.0, 0.4]])
def test_expected_auc_equals_the_pairwise_sum(p):
    p = np.asarray(p)
    assert expected_auc(p) == pytest.approx(_brute(p), abs=1e-12)


def test_all_tied_scores_expect_an_auc_of_a_half():
    assert expected_auc(np.full(50, 0.3)) == pytest.approx(0.5)


def test_the_band_holds_what_calibrated_outcomes_give():
    """Outcomes drawn from p (a calibrated model) land inside the 2.5..97.5 % band about 95 %
    of the time, and the point estimates are the means of those outcomes."""
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 6, 5000)
    e = expected(p, draws=1000, seed=1)
    inside = {"auc": 0, "brier": 0}
    trials = 200
    top = np.argsort(-p, kind="stable")[:500]
    lifts = []
    for _ in range(trials):
        y = rng.random(len(p)) < p
        from sklearn.metrics import roc_auc_score

        auc = roc_auc_score(y, p)
        brier = np.mean((p - y) ** 2)
        inside["auc"] += e.auc_low <= auc <= e.auc_high
        inside["brier"] += e.brier_low <= brier <= e.brier_high
        lifts.append(y[top].mean() / y.mean())
    assert 0.9 <= inside["auc"] / trials <= 0.99
    assert 0.9 <= inside["brier"] / trials <= 0.99
    assert e.lift_top_decile == pytest.approx(np.mean(lifts), rel=0.03)
    assert e.brier == pytest.approx(np.mean(p * (1 - p)))


def test_the_same_scores_give_the_same_band():
    p = np.random.default_rng(0).random(1000)
    assert expected(p, seed=5) == expected(p, seed=5)
    empty = expected(np.array([]))
    assert empty.draws == 0 and np.isnan(empty.auc)
