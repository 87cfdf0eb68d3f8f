"""Benchmark: the product's LightGBM fit + calibration + MLflow logging, as a ratio to a bare
`lgb.train` with the same params on the same matrix, in the same process and run.

The matrix is the feature table of `data/features/features.parquet` (run `dvc repro` or
`churn features` first), its labelled rows repeated until there are at least `--rows`.
Imports, MLflow store creation and the baseline are timed apart. Usage:
    python bench/train.py [--rows 1000000] [--rounds 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# run as `python bench/train.py`: bench/ comes first on sys.path, and bench/features.py would
# shadow the project's `features` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.catalogue import CATEGORICAL, FEATURES  # noqa: E402
from models import calibration  # noqa: E402
from models import lgbm as product_lgbm  # noqa: E402
from models.classifier import ChurnClassifier  # noqa: E402
from pipeline import io  # noqa: E402
from pipeline.params import load_params  # noqa: E402
from pipeline.stages.train import contract_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def matrix(features: Path, rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.read_parquet(features)
    table = table[table["label"].notna()]
    reps = -(-rows // len(table))
    big = pd.concat([table] * reps, ignore_index=True).iloc[:rows]
    return big[list(FEATURES)], big["label"].to_numpy(dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    x, y = matrix(params.paths.features_table, args.rows)
    cal = slice(0, len(y) // 10)
    lgb_params = product_lgbm.booster_params(params.train.lgbm, params.train.seed)
    contract = contract_of(io.read_json(params.paths.feature_meta), params.labels)

    t0 = time.perf_counter()
    import mlflow

    from models.pyfunc import ChurnPyfunc  # noqa: F401  (import cost, timed apart)
    from pipeline import tracking
    t_import = time.perf_counter() - t0
    store = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    t0 = time.perf_counter()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["DVC_ROOT"] = str(store)
    tracking.setup(uri, "bench")
    t_store = time.perf_counter() - t0

    bare, product = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        lgb.train(lgb_params, lgb.Dataset(x, label=y, categorical_feature=list(CATEGORICAL)),
                  num_boost_round=args.rounds)
        bare.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        booster = product_lgbm.fit(x, y, categorical=list(CATEGORICAL), params=params.train.lgbm,
                                   rounds=args.rounds, seed=params.train.seed)
        cal_fn = calibration.fit(booster.predict(x.iloc[cal]), y[cal], params.train.calibration)
        model = ChurnClassifier(booster, cal_fn, contract)
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
            model.save(Path(tmp) / "model")
            mlflow.log_params({k: str(v) for k, v in params.train.lgbm.items()})
            mlflow.log_metrics({"rows": float(len(y))})
            mlflow.pyfunc.log_model(
                name="model", python_model=str(ROOT / "models" / "pyfunc_model.py"),
                artifacts={"model": str(Path(tmp) / "model")},
                code_paths=[str(ROOT / "models")], pip_requirements=["lightgbm", "mlflow"])
        product.append(time.perf_counter() - t0)

    b, p = statistics.median(bare), statistics.median(product)
    print(f"matrix: {len(y):,} rows x {x.shape[1]} features, {args.rounds} rounds, "
          f"{params.train.lgbm.get('num_threads')} threads")
    print(f"apart: imports {t_import:.2f} s, MLflow store creation {t_store:.2f} s")
    print(f"bare lgb.train      runs {[round(v, 2) for v in bare]} median {b:.2f} s")
    print(f"fit+calib+MLflow    runs {[round(v, 2) for v in product]} median {p:.2f} s")
    print(f"ratio {p / b:.3f}x (target <= 1.15x)")


if __name__ == "__main__":
    main()
