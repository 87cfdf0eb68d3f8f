"""Stage `train`: fit out of time, write the models and the test-slice predictions (DVC outs).

No MLflow here: DVC's run cache may skip this stage, so tracking is the `register` stage's job.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from features.catalogue import CATEGORICAL, FAMILY, FEATURES
from models.classifier import FeatureContract
from models.training import TrainResult, train
from pipeline import io
from pipeline.params import LabelParams, Paths, TrainParams


def contract_of(meta: dict, labels: LabelParams) -> FeatureContract:
    return FeatureContract(
        features=FEATURES, dtypes=dict(meta["dtypes"]), categorical=CATEGORICAL,
        vocab={k: list(v) for k, v in meta["vocab"].items()},
        families=dict(FAMILY),
        label={"horizon_days": labels.horizon_days, "grace_days": labels.grace_days,
               "early_life_days": labels.early_life_days,
               "window_days": meta["spec"]["window_days"],
               "recent_days": meta["spec"]["recent_days"]},
    )


def run(p: TrainParams, labels: LabelParams, paths: Paths,
        log: Callable[[str], None] = print) -> TrainResult:
    table = pd.read_parquet(paths.features)
    meta = io.read_json(paths.feature_meta)
    result = train(
        table, contract_of(meta, labels), seed=p.seed, kinds=p.kinds, test_days=p.test_days,
        calibration_days=p.calibration_days, method=p.calibration, oof_folds=p.oof_folds,
        rounds=p.rounds, early_stopping=p.early_stopping, lgbm_params=p.lgbm,
        logistic_c=p.logistic_c, horizon_days=labels.horizon_days,
        hgb_params=p.hist_gradient_boosting, log=log,
    )
    with io.atomic_dir(paths.model) as tmp:
        result.final_model.save(tmp)
    with io.atomic_dir(paths.split_model) as tmp:
        result.split_model.save(tmp)
    with io.atomic_path(paths.predictions) as tmp:
        result.predictions.to_parquet(tmp, index=False)
    io.write_json(result.summary, paths.train_summary)
    return result
