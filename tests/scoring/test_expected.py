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


def test_the_band_carries_the_levels_uncertainty():
    """Weeks whose level lands off the estimate by N(0, sd^2) on the log-odds (what the level's
    standard error says): the Brier band that carries sd holds about 95 % of them; the band that
    takes the level as known holds far fewer. The AUC band barely moves."""
    from scipy import special
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    p = rng.beta(1.2, 6, 5000)
    sd = 0.08
    known, carried = expected(p, draws=1000, seed=1), expected(p, draws=1000, seed=1, level_sd=sd)
    assert carried.level_sd == sd and known.level_sd == 0
    assert (carried.brier_high - carried.brier_low) > 1.5 * (known.brier_high - known.brier_low)
    assert (carried.auc_high - carried.auc_low) == pytest.approx(
        known.auc_high - known.auc_low, rel=0.15)
    inside = {"known": 0, "carried": 0, "auc": 0}
    trials = 300
    for _ in range(trials):
        y = rng.random(len(p)) < special.expit(special.logit(p) + rng.normal(0, sd))
        brier = np.mean((p - y) ** 2)
        inside["known"] += known.brier_low <= brier <= known.brier_high
        inside["carried"] += carried.brier_low <= brier <= carried.brier_high
        inside["auc"] += carried.auc_low <= roc_auc_score(y, p) <= carried.auc_high
    assert 0.9 <= inside["carried"] / trials <= 0.99
    assert inside["known"] / trials < 0.8
    assert 0.9 <= inside["auc"] / trials <= 0.99
    # without either uncertainty the draws are the ones they always were: the band the code
    # before the uncertainties (f9b8cf6) gave on the same scores and seed
    old = expected(p, draws=200, seed=1)
    assert (old.auc_low, old.auc_high, old.lift_low, old.lift_high, old.brier_low,
            old.brier_high) == pytest.approx((0.7359066211875707, 0.7659678686052096,
                                              2.3629336832671872, 2.8302822016483757,
                                              0.11981008624482692, 0.1297469521469999), rel=1e-12)


def test_the_band_carries_the_sharpness_uncertainty():
    """Weeks whose true log-odds are the scores' scaled around their mean by a slope from
    N(1, sd^2) (a model too bold one week, too timid the next): the AUC band that carries sd
    holds about 95 % of their AUCs, the band that takes the sharpness as promised far fewer."""
    from scipy import special
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    p = rng.beta(1.2, 6, 5000)
    sd = 0.1
    known, carried = expected(p, draws=1000, seed=1), expected(p, draws=1000, seed=1, slope_sd=sd)
    assert carried.slope_sd == sd
    assert (carried.auc_high - carried.auc_low) > 1.5 * (known.auc_high - known.auc_low)
    centre = special.logit(p.mean())
    inside = {"known": 0, "carried": 0}
    trials = 300
    for _ in range(trials):
        q = special.expit(centre + rng.normal(1, sd) * (special.logit(p) - centre))
        auc = roc_auc_score(rng.random(len(p)) < q, p)
        inside["known"] += known.auc_low <= auc <= known.auc_high
        inside["carried"] += carried.auc_low <= auc <= carried.auc_high
    assert 0.9 <= inside["carried"] / trials <= 0.99
    assert inside["known"] / trials < 0.8
