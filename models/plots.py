"""The pictures analysts look at, each with the table behind it (for `dvc plots` and MLflow).

Figures are built with matplotlib's object API (no pyplot state, no backend switching).
Each function returns (figure, data frame).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from models.evaluation import gains, reliability

COLORS = {"lightgbm": "#1f77b4", "l1_logistic": "#ff7f0e", "base_rate": "#7f7f7f",
          "oracle": "#2ca02c", "hist_gradient_boosting": "#9467bd"}


def _fig(width: float = 6.0, height: float = 4.5):
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _thin(frame: pd.DataFrame, points: int = 400) -> pd.DataFrame:
    keep = np.unique(np.linspace(0, len(frame) - 1, min(len(frame), points)).astype(int))
    return frame.iloc[keep]


def _roc_table(y, p) -> pd.DataFrame:
    fpr, tpr, _ = roc_curve(y, p)
    return _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}))


def _pr_table(y, p) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(y, p)
    return _thin(pd.DataFrame({"recall": recall, "precision": precision}))


def _reliability_table(y, p) -> pd.DataFrame:
    return reliability(y, p).dropna()


def _curves(y: np.ndarray, scores: dict[str, np.ndarray], table, x: str, yy: str, *,
            title: str, xlabel: str, ylabel: str, legend: str, marker: str | None = None):
    """One line per model of `table(y, p)`; the tables stacked, with a `model` column."""
    fig, ax = _fig()
    rows = []
    for name, p in scores.items():
        t = table(y, p).assign(model=name)
        rows.append(t)
        ax.plot(t[x], t[yy], label=name, color=COLORS.get(name), marker=marker)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc=legend)
    return fig, ax, pd.concat(rows, ignore_index=True)


def roc(y: np.ndarray, scores: dict[str, np.ndarray]):
    fig, ax, data = _curves(y, scores, _roc_table, "fpr", "tpr", title="ROC, test slice",
                            xlabel="false positive rate", ylabel="true positive rate",
                            legend="lower right")
    ax.plot([0, 1], [0, 1], ls=":", color="k", lw=0.8)
    return fig, data


def pr(y: np.ndarray, scores: dict[str, np.ndarray]):
    fig, ax, data = _curves(y, scores, _pr_table, "recall", "precision",
                            title="Precision-recall, test slice", xlabel="recall",
                            ylabel="precision", legend="upper right")
    ax.axhline(np.mean(y), ls=":", color="k", lw=0.8)
    return fig, data


def calibration(y: np.ndarray, scores: dict[str, np.ndarray]):
    fig, ax, data = _curves(y, scores, _reliability_table, "predicted", "observed",
                            title="Reliability (10 equal-width bins)",
                            xlabel="predicted churn probability", ylabel="observed churn rate",
                            legend="upper left", marker="o")
    hi = max(float(max(np.max(p) for p in scores.values())), 0.05)
    ax.plot([0, hi], [0, hi], ls=":", color="k", lw=0.8)
    first = data[data["model"] == next(iter(scores))]
    for row in first.itertuples():  # a sparse bin is noisy: say how many points it holds
        ax.annotate(f"n={int(row.n):,}", (row.predicted, row.observed), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")
    return fig, data


def cumulative_gains(y: np.ndarray, scores: dict[str, np.ndarray]):
    fig, ax, data = _curves(y, scores, gains, "share", "found", title="Cumulative gains",
                            xlabel="share of customers contacted (highest risk first)",
                            ylabel="share of churners found", legend="lower right")
    ax.plot([0, 1], [0, 1], ls=":", color="k", lw=0.8)
    return fig, data


def importance(gain: pd.Series, families: dict[str, str], top: int = 25):
    g = gain.sort_values(ascending=False).head(top)[::-1]
    fig, ax = _fig(7, 0.25 * len(g) + 1.2)
    ax.barh(g.index, g.to_numpy() / gain.sum())
    ax.set(xlabel="share of total gain", title="LightGBM feature importance (gain)")
    data = pd.DataFrame({"feature": gain.index, "family": [families[f] for f in gain.index],
                         "gain_share": gain.to_numpy() / gain.sum()})
    return fig, data.sort_values("gain_share", ascending=False, ignore_index=True)


def shap_summary(contrib: pd.DataFrame, values: pd.DataFrame, top: int = 15):
    """Mean |contribution| per feature, and each point's contribution coloured by its value."""
    mean_abs = contrib.drop(columns="bias").abs().mean().sort_values(ascending=False)
    names = list(mean_abs.head(top).index)[::-1]
    fig, ax = _fig(7.5, 0.32 * len(names) + 1.4)
    rng = np.random.Generator(np.random.PCG64(0))
    for i, name in enumerate(names):
        v = values[name].to_numpy(dtype=float)
        finite = np.isfinite(v)
        lo, hi = (np.nanpercentile(v, [5, 95]) if finite.any() else (0.0, 1.0))
        colour = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, len(v))
        ax.scatter(contrib[name], i + jitter, c=np.where(finite, colour, 0.5), cmap="coolwarm",
                   s=3, alpha=0.5, rasterized=True)
    ax.set_yticks(range(len(names)), names)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="contribution to churn log-odds (blue = low value, red = high)",
           title="SHAP summary (LightGBM pred_contrib)")
    data = pd.DataFrame({"feature": mean_abs.index, "mean_abs_contribution": mean_abs.to_numpy()})
    return fig, data


def deciles(frame: pd.DataFrame, features: list[str], label: str = "label"):
    """Observed churn rate by decile of each top feature."""
    cols = 3
    rows_n = int(np.ceil(len(features) / cols))
    fig = Figure(figsize=(4 * cols, 2.8 * rows_n), dpi=100, layout="constrained")
    rows = []
    for i, name in enumerate(features):
        ax = fig.add_subplot(rows_n, cols, i + 1)
        v = frame[name]
        bins = pd.qcut(v.rank(method="first"), 10, labels=False)
        r = frame.groupby(bins)[label].mean()
        mid = v.groupby(bins).median()
        rows.append(pd.DataFrame({"feature": name, "decile": r.index + 1,
                                  "median_value": mid.to_numpy(), "churn_rate": r.to_numpy()}))
        ax.bar(r.index + 1, r.to_numpy())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("decile", fontsize=8)
        ax.set_ylabel("churn rate", fontsize=8)
    fig.suptitle("Observed churn rate by decile of the top features (test slice)")
    return fig, pd.concat(rows, ignore_index=True)
