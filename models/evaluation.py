"""Out-of-time metrics with bootstrap intervals resampled by customer.

Points of one customer are correlated, so the bootstrap draws customers (with replacement)
and weighs each point by how often its customer was drawn. Every metric is computed for all
resamples at once from one sort of the scores: a (resamples x points) weight matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP = (0.05, 0.10, 0.20)
BINS = 10
EPS = 1e-15


def customer_weights(customers: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples x points) weights: how often each point's customer was drawn."""
    codes, uniq = pd.factorize(customers, sort=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.integers(0, len(uniq), size=(resamples, len(uniq)))
    counts = np.zeros((resamples, len(uniq)), dtype=np.float32)
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts[:, codes]


def batch_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of the weight matrix `w` (one row = one resample)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    ws = np.asarray(w, dtype=np.float64)[:, order]
    wy = ws * ys
    total, pos = ws.sum(axis=1), wy.sum(axis=1)
    neg = total - pos
    # tied scores form one threshold
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    pos_g = np.add.reduceat(wy, starts, axis=1)
    neg_g = np.add.reduceat(ws - wy, starts, axis=1)
    tp, fp = np.cumsum(pos_g, axis=1), np.cumsum(neg_g, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos_g * (neg[:, None] - fp + 0.5 * neg_g)).sum(axis=1) / (pos * neg)
        ap = (pos_g * tp / (tp + fp)).sum(axis=1) / pos
    pc = np.clip(ps, EPS, 1 - EPS)
    brier = (ws * (ps - ys) ** 2).sum(axis=1) / total
    log_loss = -(ws * (ys * np.log(pc) + (1 - ys) * np.log(1 - pc))).sum(axis=1) / total
    bins = np.minimum((ps * BINS).astype(np.int64), BINS - 1)
    onehot = np.zeros((len(ps), BINS))
    onehot[np.arange(len(ps)), bins] = 1.0
    gap = (ws * ys) @ onehot - (ws * ps) @ onehot
    ece = np.abs(gap).sum(axis=1) / total
    out = {"roc_auc": auc, "pr_auc": ap, "log_loss": log_loss, "brier": brier, "ece": ece,
           "base_rate": pos / total}
    cum = np.cumsum(ws, axis=1)
    cum_pos = np.cumsum(wy, axis=1)
    for k in TOP:
        # the top k share of the (weighted) points, highest scores first
        idx = np.minimum((cum < k * total[:, None]).sum(axis=1), len(ps) - 1)
        rows = np.arange(len(total))
        top_w, top_pos = cum[rows, idx], cum_pos[rows, idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"precision_at_{int(k * 100)}"] = top_pos / top_w
            out[f"recall_at_{int(k * 100)}"] = top_pos / pos
    with np.errstate(invalid="ignore", divide="ignore"):
        out["lift_at_10"] = out["precision_at_10"] / out["base_rate"]
    return out


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric on the points as they are (no resampling)."""
    return {k: float(v[0]) for k, v in batch_metrics(y, p, np.ones((1, len(y)))).items()}


Scored = tuple[dict[str, float], dict[str, np.ndarray]]  # point values, per-resample values


def score(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None) -> Scored:
    """One model's metrics on the points, and on each resample (none without `weights`)."""
    return point_metrics(y, p), (batch_metrics(y, p, weights) if weights is not None else {})


def summary(scored: Scored) -> dict[str, dict[str, float]]:
    """{metric: {value, lo, hi}}: the point estimate and the 95 % bootstrap interval."""
    point, boot = scored
    result = {}
    for name, value in point.items():
        result[name] = {"value": value}
        if boot:
            lo, hi = np.nanpercentile(boot[name], [2.5, 97.5])
            result[name] |= {"lo": float(lo), "hi": float(hi)}
    return result


def difference(a: Scored, b: Scored, metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """{metric: {value, lo, hi}} of metric(a) - metric(b) on the same resamples: is a better
    than b beyond the noise?"""
    out = {}
    for m in metrics:
        lo, hi = np.nanpercentile(a[1][m] - b[1][m], [2.5, 97.5])
        out[m] = {"value": a[0][m] - b[0][m], "lo": float(lo), "hi": float(hi)}
    return out


def evaluate(y: np.ndarray, p: np.ndarray, customers: np.ndarray, *, resamples: int,
             seed: int) -> dict[str, dict[str, float]]:
    """`summary` of one model, resampling customers."""
    return summary(score(y, p, customer_weights(customers, resamples, seed) if resamples
                         else None))


def paired_difference(y, p_a, p_b, customers, *, metrics: tuple[str, ...], resamples: int,
                      seed: int) -> dict[str, dict[str, float]]:
    """`difference` of two models on the same customer resamples."""
    w = customer_weights(customers, resamples, seed)
    return difference(score(y, p_a, w), score(y, p_b, w), metrics)


def reliability(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per equal-width bin: mean predicted, observed rate, count (the reliability diagram)."""
    bins = np.minimum((np.asarray(p) * BINS).astype(int), BINS - 1)
    df = pd.DataFrame({"bin": bins, "p": p, "y": y})
    g = df.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return g.reindex(range(BINS)).reset_index()


def gains(y: np.ndarray, p: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Cumulative gains: share of churners found in the top x share of scores."""
    order = np.argsort(-np.asarray(p), kind="stable")
    found = np.cumsum(np.asarray(y)[order]) / max(np.sum(y), 1)
    share = np.linspace(0, 1, points)
    idx = np.clip((share * len(order)).astype(int) - 1, -1, len(order) - 1)
    return pd.DataFrame({"share": share, "found": np.where(idx < 0, 0.0, found[idx])})
