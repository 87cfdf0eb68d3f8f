"""Stage `train`: fit out of time, write the models and the test-slice predictions (one folder).

No MLflow here: DVC's run cache may skip this stage, so tracking is the `register` stage's job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.catalogue import CATEGORICAL, FAMILY, FEATURES
from features.config import LabelConfig
from models.classifier import FeatureContract
from models.config import TrainConfig
from models.training import TrainingDataError, TrainResult, train
from pipeline import artifacts, io, tables
from pipeline.params import Paths
from scoring import drift

STAGE = "train"


def contract_of(meta: dict, labels: LabelConfig) -> FeatureContract:
    return FeatureContract(
        features=FEATURES, dtypes=dict(meta["dtypes"]), categorical=CATEGORICAL,
        vocab={k: list(v) for k, v in meta["vocab"].items()},
        families=dict(FAMILY),
        label={"horizon_days": labels.horizon_days, "grace_days": labels.grace_days,
               "early_life_days": labels.early_life_days,
               "window_days": meta["spec"]["window_days"],
               "recent_days": meta["spec"]["recent_days"]},
    )


def reference(table: pd.DataFrame, days: int) -> drift.References:
    """The drift reference frozen with the model: the features of customers at risk on the
    days of the last `days` before the export's as-of date (every observation point there is
    one: a customer at risk on a day), pooled and per weekday. Not the training points, which
    are older (labelled) and weighted to other tenures."""
    t = pd.to_datetime(table["t"])
    as_of = t[table["kind"] == "scoring"].max()
    if pd.isna(as_of):
        raise TrainingDataError("the feature table has no scoring points (nobody at risk on the "
                                "export's as-of date): the drift reference needs them")
    recent = table[t >= as_of - pd.Timedelta(days=days)]
    return drift.build_references(recent, list(FEATURES), list(CATEGORICAL))


def run(p: TrainConfig, labels: LabelConfig, paths: Paths,
        log: Callable[[str], None] = print) -> TrainResult:
    artifacts.claim(Path(paths.models), STAGE)
    inputs = artifacts.read_all(*tables.inputs(paths, "features"))
    table = pd.read_parquet(paths.features_table)
    meta = io.read_json(paths.feature_meta)
    built = [f["name"] for f in meta["features"]]
    if built != list(FEATURES):
        raise artifacts.StaleInputError(
            f"{paths.features} was built with another feature catalogue (an older version of "
            f"the code: {len(built)} features, this version has {len(FEATURES)}): run "
            "`churn features` again.")
    result = train(table, contract_of(meta, labels), p, horizon_days=labels.horizon_days, log=log)
    with artifacts.stage_output(Path(paths.models), STAGE, inputs) as tmp:
        result.final_model.save(tmp / paths.model.name)
        io.write_json(reference(table, p.reference_days).to_dict(), tmp / paths.model.name / "reference.json")
        result.split_model.save(tmp / paths.split_model.name)
        result.predictions.to_parquet(tmp / paths.predictions.name, index=False)
        io.write_json(result.summary.to_dict(), tmp / paths.train_summary.name)
    return result


def render(r: TrainResult, console, *, paths: Paths) -> None:
    """The one-screen summary: the two models and the slices, the forward calibration check
    (with advice when another method did better), features that carry no information."""
    from rich.table import Table

    from models import calibration

    s = r.summary.to_dict()
    console.print(
        f"models -> {paths.models}: split model (test metrics) and production model "
        f"(refit on {s['points']['all_labelled']:,} points, {s['best_iteration']} rounds, "
        f"{s['calibration']['method']} calibration from {s['calibration']['oof_points']:,} "
        f"out-of-fold points).\nslices: train {s['points']['train']:,} / calibration "
        f"{s['points']['calibration']:,} / test {s['points']['test']:,} "
        f"({s['points']['purged']:,} purged); test from {s['boundaries']['test_start']}."
    )
    check = s["calibration"]["forward_check"]
    if check:
        method = s["calibration"]["method"]
        table = Table(title="calibration check: fitted on the older half of the calibration "
                            "slice, scored on the newer half (lower is better, AUC higher)")
        for col in ("scores", "log loss", "Brier", "ECE", "AUC"):
            table.add_column(col)
        for name, m in check.items():
            label = f"{name} (in use: train.calibration)" if name == method else name
            table.add_row(label, *(f"{m[k]:.4f}" for k in ("log_loss", "brier", "ece", "roc_auc")))
        console.print(table)
        note = calibration.advice(check, method)
        if note:
            console.print(f"[yellow]note: {note}[/yellow]")
    if r.uninformative:
        console.print(f"[yellow]note: {len(r.uninformative)} features carry no information in "
                      f"this export (one value for every point): {', '.join(r.uninformative)}. "
                      "The models train without them; an optional table may be absent.[/yellow]")
