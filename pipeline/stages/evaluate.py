"""Stage `evaluate`: out-of-time metrics with customer-bootstrap intervals, and the plots.

Writes one folder (`paths.evaluation`): `metrics.json` (DVC metrics; `register` logs the same
numbers to MLflow) and `plots/<name>.png` with the CSV behind each picture. The metrics are
rounded to 9 significant digits and the CSVs to 6, so that another CPU's last bits (numpy's
vector kernels, BLAS) do not change the files (simulator/exact.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from common.exact import round_floats
from models import plots
from models.classifier import ChurnClassifier
from models.config import EvaluateConfig
from models.evaluation import Scored, customer_weights, difference, score, summary
from models.profit import empc
from models.training import MODELS
from pipeline import artifacts, io, tables
from pipeline.params import Paths
from scoring.config import ScoreConfig

STAGE = "evaluate"

SUBSETS = ("all", "young", "early_life", "ongoing")


def _subsets(frame: pd.DataFrame, p: EvaluateConfig) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Each subset's rows and its customer-bootstrap weights, drawn once for every model."""
    out = {}
    for subset in SUBSETS:
        rows = frame if subset == "all" else frame[frame["kind"] == subset]
        if rows["label"].nunique() < 2:
            continue
        out[subset] = (rows, customer_weights(rows["customer_id"].to_numpy(), p.resamples,
                                              p.seed) if p.resamples else None)
    return out


def _scores(subsets: dict, column: str, resample: bool = True) -> dict[str, Scored]:
    return {subset: score(rows["label"].to_numpy(), rows[column].to_numpy(),
                          w if resample else None)
            for subset, (rows, w) in subsets.items()}


def _summaries(scored: dict[str, Scored]) -> dict:
    return {subset: summary(s) for subset, s in scored.items()}


def expected_profit(pred: pd.DataFrame, models: list[str], p: EvaluateConfig,
                    offer: ScoreConfig) -> dict:
    """EMPC per model on the test slice: the expected maximum profit per customer of a
    retention campaign that contacts the top of the model's ranking (Verbraken et al. 2013),
    with the offer's costs of the weekly scoring and gamma ~ Beta(score.gamma_alpha, _beta)."""
    y = pred["label"].to_numpy()
    out = {}
    for model in models:
        r = empc(pred[f"p_{model}"].to_numpy(), y, p.empc_clv, offer_cost=offer.offer_cost,
                 contact_cost=offer.contact_cost, alpha=offer.gamma_alpha, beta=offer.gamma_beta)
        out[model] = {"empc": r.empc, "contact_share": r.contact_share}
    return {"clv": p.empc_clv, "offer_cost": offer.offer_cost,
            "contact_cost": offer.contact_cost, "models": out}


def run(p: EvaluateConfig, paths: Paths, log: Callable[[str], None] = print,
        offer: ScoreConfig | None = None) -> dict:
    artifacts.claim(Path(paths.evaluation), STAGE)
    inputs = artifacts.read_all(*tables.inputs(paths, "models", "features"))
    pred = pd.read_parquet(paths.predictions)
    trained = io.read_json(paths.train_summary)
    log(f"metrics on {len(pred):,} test points, {p.resamples} customer resamples")
    metrics: dict = {"split": trained, "test": {}}
    models = [m for m in MODELS if f"p_{m}" in pred.columns]
    subsets = _subsets(pred, p)
    scored = {m: _scores(subsets, f"p_{m}") for m in models}
    for model in models:
        metrics["test"][model] = _summaries(scored[model])
    metrics["test"]["lightgbm_uncalibrated"] = _summaries(_scores(subsets, "p_lightgbm_raw"))
    for trees in ("lightgbm", "hist_gradient_boosting"):
        if trees in models and p.resamples:  # do trees find more than the linear model?
            metrics[f"{trees}_minus_l1_logistic"] = difference(
                scored[trees]["all"], scored["l1_logistic"]["all"], ("roc_auc", "pr_auc", "brier"))
    if offer is not None and pred["label"].nunique() == 2:
        metrics["empc"] = expected_profit(pred, models, p, offer)
    with_truth = pred[pred["truth"].notna()]
    if len(with_truth):
        truth_subsets = subsets if len(with_truth) == len(pred) else _subsets(with_truth, p)
        metrics["oracle"] = _summaries(_scores(truth_subsets, "truth"))
        # only the point values are compared: no resampling
        same_rows = _scores(truth_subsets, "p_lightgbm", resample=False)
        metrics["lightgbm_minus_oracle"] = {
            subset: {m: same_rows[subset][0][m] - metrics["oracle"][subset][m]["value"]
                     for m in ("roc_auc", "pr_auc", "brier", "ece")}
            for subset in metrics["oracle"]
        }
    log("plots")
    y = pred["label"].to_numpy()
    model = ChurnClassifier.load(paths.split_model)
    table = pd.read_parquet(paths.features_table)
    test = pred[["customer_id", "t"]].merge(table, on=["customer_id", "t"], how="left")
    scores = {m: pred[f"p_{m}"].to_numpy() for m in models}
    # the oracle's curves only where the simulator's truth covers every test point (own
    # exports have none); its metrics above use the points that have it
    scores_truth = ({"oracle": pred["truth"].to_numpy()}
                    if pred["truth"].notna().all() else {})
    gain = pd.Series(model.booster.feature_importance("gain"), index=model.contract.features)
    sample = test.sample(n=min(p.shap_sample, len(test)), random_state=p.seed)
    contrib = model.contributions(sample)
    top = list(gain.sort_values(ascending=False).index[: p.top_features])
    figures = {
        "roc": plots.roc(y, scores | scores_truth),
        "pr": plots.pr(y, scores | scores_truth),
        "calibration": plots.calibration(y, {"lightgbm": scores["lightgbm"],
                                             "l1_logistic": scores["l1_logistic"]}),
        "gains": plots.cumulative_gains(y, scores | scores_truth),
        "importance": plots.importance(gain, model.contract.families),
        "shap": plots.shap_summary(contrib, sample),
        "deciles": plots.deciles(test.assign(label=y), top),
    }
    metrics = round_floats(metrics)
    with artifacts.stage_output(Path(paths.evaluation), STAGE, inputs) as tmp:
        io.write_json(headline_metrics(metrics), tmp / paths.metrics.name)
        io.write_json(metrics, tmp / paths.metrics_detail.name)
        out = tmp / paths.plots.name
        out.mkdir()
        for name, (fig, data) in figures.items():
            fig.savefig(out / f"{name}.png", format="png", metadata={"Software": None})
            data.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    return metrics


HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10")


def headline_metrics(metrics: dict) -> dict:
    """The few dozen figures people compare runs by (DVC metrics, MLflow metrics): per model
    the six headline metrics on all test points, the gaps to the baseline (with its interval)
    and to the oracle, LightGBM's AUC per kind. Intervals and every cut are in the detail."""
    out: dict = {"test_points": metrics["split"]["points"]["test"]}
    for model, subsets in metrics["test"].items():
        if "all" in subsets:
            out[model] = {m: subsets["all"][m]["value"] for m in HEADLINE if m in subsets["all"]}
    for model, r in metrics.get("empc", {}).get("models", {}).items():
        if model in out:
            out[model]["empc"] = r["empc"]
            if model == "lightgbm":
                out[model]["empc_contact_share"] = r["contact_share"]
    auc = metrics["test"]["lightgbm"]["all"]["roc_auc"]
    if "lo" in auc:
        out["lightgbm"] |= {"roc_auc_lo": auc["lo"], "roc_auc_hi": auc["hi"]}
    out["lightgbm_auc_by_kind"] = {kind: m["roc_auc"]["value"]
                                   for kind, m in metrics["test"]["lightgbm"].items()
                                   if kind != "all"}
    for trees in ("lightgbm", "hist_gradient_boosting"):
        diff = metrics.get(f"{trees}_minus_l1_logistic", {}).get("roc_auc")
        if diff:
            out[f"{trees}_minus_l1_logistic"] = {"roc_auc": diff["value"],
                                                 "roc_auc_lo": diff["lo"],
                                                 "roc_auc_hi": diff["hi"]}
    if "oracle" in metrics:
        out["oracle"] = {m: metrics["oracle"]["all"][m]["value"] for m in HEADLINE
                         if m in metrics["oracle"]["all"]}
        out["lightgbm_minus_oracle"] = {kind: gap["roc_auc"] for kind, gap in
                                        metrics["lightgbm_minus_oracle"].items()}
    return out


def headline(metrics: dict) -> list[tuple[str, str]]:
    """The lines a person reads first: per model, AUC with its interval, ECE, lift."""
    rows = []
    for model, subsets in metrics["test"].items():
        m = subsets.get("all")
        if not m:
            continue
        auc = m["roc_auc"]
        rows.append((model, f"AUC {auc['value']:.3f} [{auc.get('lo', np.nan):.3f}, "
                            f"{auc.get('hi', np.nan):.3f}]  ECE {m['ece']['value']:.4f}  "
                            f"Brier {m['brier']['value']:.4f}  lift@10 "
                            f"{m['lift_at_10']['value']:.2f}"))
    if "oracle" in metrics:
        o = metrics["oracle"]["all"]
        rows.append(("oracle (truth)", f"AUC {o['roc_auc']['value']:.3f}  "
                                       f"ECE {o['ece']['value']:.4f}"))
        gap = metrics["lightgbm_minus_oracle"]["all"]["roc_auc"]
        rows.append(("lightgbm - oracle", f"AUC {gap:+.3f}"))
    for trees in ("lightgbm", "hist_gradient_boosting"):
        if f"{trees}_minus_l1_logistic" in metrics:
            d = metrics[f"{trees}_minus_l1_logistic"]["roc_auc"]
            rows.append((f"{trees} - l1_logistic",
                         f"AUC {d['value']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]"))
    return rows


def render(metrics: dict, console, *, paths: Paths) -> None:
    """The one-screen summary: the headline lines of each model on the test slice."""
    from rich.table import Table

    table = Table(title=f"test slice from {metrics['split']['boundaries']['test_start']} "
                        f"({metrics['split']['points']['test']:,} points)")
    table.add_column("model")
    table.add_column("metrics (95 % customer-bootstrap interval)")
    for name, text in headline(metrics):
        table.add_row(name, text)
    console.print(table)
    console.print(f"{paths.metrics}, plots in {paths.plots}/")
