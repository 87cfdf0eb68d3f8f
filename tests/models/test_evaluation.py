"""Metric test vectors, and the customer bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from models.evaluation import batch_metrics, customer_weights, difference, evaluate, paired_difference, score


def test_weighted_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    p = np.round(rng.random(3000), 2)  # ties on purpose
    y = (rng.random(3000) < p).astype(float)
    w = rng.integers(0, 3, size=(4, 3000)).astype(float)
    m = batch_metrics(y, p, w)
    for b in range(4):
        assert m["roc_auc"][b] == pytest.approx(roc_auc_score(y, p, sample_weight=w[b]), 1e-12)
        assert m["pr_auc"][b] == pytest.approx(
            average_precision_score(y, p, sample_weight=w[b]), 1e-12)
        assert m["brier"][b] == pytest.approx(brier_score_loss(y, p, sample_weight=w[b]), 1e-12)
        assert m["log_loss"][b] == pytest.approx(
            log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), sample_weight=w[b]), 1e-12)


def test_ece_lift_precision_recall_vectors():
    # 10 points, 3 churners; scores put two churners on top
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], dtype=float)
    p = np.array([0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05])
    m = {k: v[0] for k, v in batch_metrics(y, p, np.ones((1, 10))).items()}
    # each bin holds one point: ECE = mean |y - p|
    assert m["ece"] == pytest.approx(np.mean(np.abs(y - p)))
    assert m["precision_at_10"] == 1.0 and m["recall_at_10"] == pytest.approx(1 / 3)
    assert m["lift_at_10"] == pytest.approx(1.0 / 0.3)
    assert m["precision_at_20"] == 1.0 and m["recall_at_20"] == pytest.approx(2 / 3)


def test_bootstrap_resamples_customers_and_brackets_the_estimate():
    customers = np.array([1, 1, 2, 3, 3, 3])
    w = customer_weights(customers, 500, seed=1)
    assert w.shape == (500, 6)
    # a customer's points always share one weight, and each resample draws 3 customers
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 5]).all()
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()
    rng = np.random.default_rng(2)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(float)
    r = evaluate(y, p, rng.integers(0, 400, 2000), resamples=200, seed=3)
    assert r["roc_auc"]["lo"] < r["roc_auc"]["value"] < r["roc_auc"]["hi"]
    again = evaluate(y, p, rng.integers(0, 400, 2000), resamples=200, seed=3)
    assert again["roc_auc"]["value"] == r["roc_auc"]["value"]


def test_paired_difference_sees_a_better_model():
    rng = np.random.default_rng(4)
    truth = rng.random(4000)
    y = (rng.random(4000) < truth).astype(float)
    noisy = np.clip(truth + rng.normal(0, 0.4, 4000), 0, 1)
    customers = rng.integers(0, 800, 4000)
    d = paired_difference(y, truth, noisy, customers, metrics=("roc_auc", "brier"),
                          resamples=200, seed=5)
    assert d["roc_auc"]["lo"] > 0 and d["roc_auc"]["value"] > 0.05
    assert d["brier"]["hi"] < 0  # the truth's squared error is lower
    # the same resamples, scored apart and then compared: the same interval
    w = customer_weights(customers, 200, 5)
    assert difference(score(y, truth, w), score(y, noisy, w), ("roc_auc",))["roc_auc"] \
        == d["roc_auc"]
