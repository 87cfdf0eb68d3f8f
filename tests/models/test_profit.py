"""Expected net and the contact list on hand-computed vectors; EMPC against the published
vector, hand-derived hulls and a brute-force integral over every cutoff."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from models.profit import EmpcResult, empc, expected_net, profit_list

COSTS = {"offer_cost": 10.0, "contact_cost": 1.0}  # the paper's d and f, with CLV 200
BETA = stats.beta(6, 14)


def test_expected_net_hand_vector():
    p = np.array([1.0, 0.0, 0.5, 0.2])
    value = np.array([200.0, 200.0, 100.0, np.nan])
    net = expected_net(p, value, gamma=0.3, **COSTS)
    # a sure churner: 0.3 * 200 - 10 * 0.3 - 1; a sure stayer: -10 - 1;
    # p = 0.5, V = 100: 0.5 * 0.3 * 100 - 10 * (0.15 + 0.5) - 1
    np.testing.assert_allclose(net[:3], [56.0, -11.0, 7.5], rtol=1e-12)
    assert np.isnan(net[3])


def test_expected_net_rejects_a_gamma_outside_0_1():
    with pytest.raises(ValueError, match="gamma"):
        expected_net(np.ones(2), np.ones(2), gamma=1.5, **COSTS)


NET = np.array([5.0, np.nan, 3.0, 5.0, -1.0, 0.0, 3.0])


def test_profit_list_ranks_ties_in_input_order_and_nan_last():
    rank, in_list = profit_list(NET, capacity=None)
    # 5 (#0), 5 (#3), 3 (#2), 3 (#6), 0 (#5), -1 (#4), NaN (#1)
    assert rank.tolist() == [1, 7, 3, 2, 6, 5, 4]
    assert rank.dtype == np.int64
    # only a positive net is worth a call: zero, negative and NaN are out
    assert in_list.tolist() == [True, False, True, True, False, False, True]


def test_profit_list_capacity_and_holdout():
    _, top3 = profit_list(NET, capacity=3)
    assert top3.tolist() == [True, False, True, True, False, False, False]
    holdout = np.array([True, True, True, False, True, True, True])  # #3 is in the control group
    rank, in_list = profit_list(NET, capacity=2, eligible=holdout)
    assert rank.tolist() == [1, 7, 3, 2, 6, 5, 4]  # ranks ignore eligibility
    assert in_list.tolist() == [True, False, True, False, False, False, False]
    assert not profit_list(NET, capacity=0)[1].any()
    assert profit_list(NET, capacity=100)[1].tolist() == profit_list(NET, capacity=None)[1].tolist()


def test_profit_list_rejects_bad_inputs():
    with pytest.raises(ValueError, match="capacity"):
        profit_list(NET, capacity=-1)
    with pytest.raises(ValueError, match="eligible"):
        profit_list(NET, capacity=None, eligible=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="eligible"):
        profit_list(NET, capacity=None, eligible=np.ones(7))  # 0/1 floats, not a mask


def _best_constant(churn_rate: float) -> float:
    """E over gamma of the better of calling nobody (0) and calling everyone."""
    everyone = lambda g: churn_rate * (190 * g - 1) - (1 - churn_rate) * 11  # noqa: E731
    return integrate.quad(lambda g: max(0.0, everyone(g)) * BETA.pdf(g), 0, 1, limit=200)[0]


def _brute_force(scores, labels) -> tuple[float, float]:
    """Integrate, on a fine gamma grid, the best profit over every cutoff of the raw ROC
    (no hull): calling the top k for each distinct score, or nobody."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.r_[0, np.cumsum(y)[last]] / len(y)
    fp = np.r_[0, last + 1] / len(y) - tp
    g = np.linspace(0, 1, 200_001)
    profit = (200 * (g[:, None] * 0.95 - 0.005) * tp - 200 * 0.055 * fp)  # gamma x cutoff
    best = profit.argmax(axis=1)
    pdf = BETA.pdf(g)
    return (float(np.trapezoid(profit[np.arange(g.size), best] * pdf, g)),
            float(np.trapezoid((tp + fp)[best] * pdf, g)))


@pytest.mark.parametrize("half", [1, 500])
def test_empc_published_vector(half):
    # Perfect ranking, half churners, CLV 200, d 10, f 1, gamma ~ Beta(6, 14). Calling exactly
    # the churners earns, per customer, 0.5 * (gamma * (200 - 10) - 1) = 95 gamma - 0.5 (a
    # churner who declines pays no offer, only the contact: the paper's Eq. for P(t; gamma)).
    # That is positive above gamma = 1/190, which Beta(6, 14) all but never undercuts, so
    # EMPC = 95 * E[gamma] - 0.5 = 95 * 0.3 - 0.5 = 28.0, with half the customers called.
    # (Charging the declining churner the offer too, 0.5 * (190 g - 10 (1 - g)) - 0.5, would
    # give 24.5: not the published figure, and not the paper's model.)
    labels = np.r_[np.ones(half), np.zeros(half)]
    r = empc(np.r_[np.full(half, 0.9), np.full(half, 0.1)], labels, 200, **COSTS)
    assert isinstance(r, EmpcResult)
    assert r.empc == pytest.approx(28.0, abs=1e-6)
    assert r.contact_share == pytest.approx(0.5, abs=1e-6)
    # the same economics as expected_net: calling the churners at the mean gamma
    assert expected_net(labels, 200.0, gamma=0.3, **COSTS)[labels == 1].sum() / labels.size == 28.0


def test_empc_with_a_tie_on_the_hull_hand_derived():
    # counts (false, true positives) at each cutoff: (0,0) (0,1) (1,2) (2,2); the tie at 0.5 is a
    # diagonal from (0,1) to (1,2). Per customer (n = 4): the top one pays (190 g - 1) / 4 from
    # g = 1/190, the top three (2 (190 g - 1) - 11) / 4 from g = 6/95.
    scores, labels = np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])
    def best(g):
        return max(0.0, (190 * g - 1) / 4, (380 * g - 13) / 4)
    kinks = [1 / 190, 6 / 95]
    want = integrate.quad(lambda g: best(g) * BETA.pdf(g), 0, 1, points=kinks)[0]
    share = (BETA.cdf(6 / 95) - BETA.cdf(1 / 190)) * 0.25 + BETA.sf(6 / 95) * 0.75
    r = empc(scores, labels, 200, **COSTS)
    assert r.empc == pytest.approx(want, rel=1e-9)
    assert r.contact_share == pytest.approx(share, rel=1e-9)
    # a tie is worth what breaking it against the model is worth (the hull interpolates),
    # strictly less than breaking it in the model's favour
    against = empc(np.array([0.9, 0.49, 0.5, 0.1]), labels, 200, **COSTS)
    favour = empc(np.array([0.9, 0.5, 0.49, 0.1]), labels, 200, **COSTS)
    assert against == r
    assert r.empc < favour.empc - 1


def test_empc_matches_brute_force_over_every_cutoff():
    rng = np.random.default_rng(7)
    scores = np.round(rng.random(300), 1)  # 11 distinct scores: diagonal segments
    labels = (rng.random(300) < 0.2 + 0.5 * scores).astype(int)
    want, share = _brute_force(scores, labels)
    r = empc(scores, labels, 200, **COSTS)
    assert r.empc == pytest.approx(want, rel=1e-7)
    assert r.contact_share == pytest.approx(share, rel=1e-5)


def test_all_tied_scores_give_the_best_constant_policy():
    labels = np.r_[np.ones(30), np.zeros(70)]
    r = empc(np.full(100, 0.4), labels, 200, **COSTS)
    assert r.empc == pytest.approx(_best_constant(0.3), rel=1e-8)
    # everyone is called when 0.3 (190 g - 1) > 0.7 * 11, i.e. g > 8 / 57
    assert r.contact_share == pytest.approx(BETA.sf(8 / 57), rel=1e-9)


@pytest.mark.parametrize("rate", [0.5, 0.05])
def test_a_random_ranking_earns_about_the_best_constant_policy(rate):
    rng = np.random.default_rng(11)
    labels = (rng.random(20_000) < rate).astype(int)
    r = empc(rng.random(20_000), labels, 200, **COSTS)
    floor = _best_constant(labels.mean())  # 0 at a 5 % churn rate: calling everyone never pays
    assert floor - 1e-9 <= r.empc < floor + 0.3


def test_a_better_model_earns_more():
    rng = np.random.default_rng(3)
    truth = rng.beta(1, 3, 10_000)
    labels = (rng.random(10_000) < truth).astype(int)
    noisy = truth + rng.normal(0, 0.15, 10_000)
    good, worse, blind = (empc(s, labels, 200, **COSTS).empc for s in (truth, noisy, rng.random(10_000)))
    # about 8.4 > 7.3 > 6.0 (seeds 0-4 give the same order with gaps of 0.8 or more)
    assert good > worse + 0.5 and worse > blind + 0.5


def test_empc_only_sees_the_order_of_the_scores():
    rng = np.random.default_rng(5)
    scores = rng.integers(1, 100, 2000) / 100  # ties on purpose
    labels = (rng.random(2000) < scores).astype(int)
    r = empc(scores, labels, 200, **COSTS)
    assert empc(special.logit(scores), labels, 200, **COSTS) == r
    assert empc(scores**3 * 7 - 2, labels, 200, **COSTS) == r
    assert empc(-scores, labels, 200, **COSTS).empc < r.empc  # the order does matter


@pytest.mark.parametrize("labels", [np.ones(5), np.zeros(5)])
def test_one_class_is_refused(labels):
    with pytest.raises(ValueError, match="both churners and non-churners"):
        empc(np.linspace(0, 1, 5), labels, 200, **COSTS)


@pytest.mark.parametrize(("scores", "labels", "clv", "costs", "match"), [
    (np.array([0.1, np.nan]), np.array([0, 1]), 200, COSTS, "finite"),
    (np.array([0.1, 0.2, 0.3]), np.array([0, 1]), 200, COSTS, "same length"),
    (np.array([0.1, 0.2]), np.array([0, 2]), 200, COSTS, "labels must be 0"),
    (np.array([0.1, 0.2]), np.array([0, 1]), 200, {"offer_cost": 200, "contact_cost": 1}, "offer_cost"),
    (np.array([0.1, 0.2]), np.array([0, 1]), 0, COSTS, "clv"),
])
def test_bad_inputs_are_refused(scores, labels, clv, costs, match):
    with pytest.raises(ValueError, match=match):
        empc(scores, labels, clv, **costs)
