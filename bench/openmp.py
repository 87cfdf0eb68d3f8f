"""Benchmark: OpenMP's wait policy on a machine whose cores are busy with other jobs.

    .venv/bin/python bench/openmp.py [--rows 200000] [--repeat 3]

Why `churn` sets OMP_WAIT_POLICY=PASSIVE (docs/design.md): LightGBM and scikit-learn's
HistGradientBoosting parallelise with OpenMP, whose waiting threads spin by default. Each
measurement is a fresh process (the policy is read when the OpenMP library loads) that fits
LightGBM (300 rounds, 2 threads) and HistGradientBoosting (100 iterations) on the same
seeded synthetic matrix, with the policy ACTIVE (spin, the default) or PASSIVE (sleep), on a
quiet machine and with one busy-loop process per core running beside it. Printed: median
seconds per cell and the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = """
import json, time, numpy as np, lightgbm as lgb
from sklearn.ensemble import HistGradientBoostingClassifier
rng = np.random.default_rng(0)
x = rng.normal(size=({rows}, 40))
y = (x[:, :5].sum(axis=1) + rng.normal(size={rows}) > 0).astype(int)
t0 = time.perf_counter()
lgb.train({{"objective": "binary", "num_threads": 2, "verbosity": -1, "seed": 1,
           "num_leaves": 7, "min_data_in_leaf": 200}}, lgb.Dataset(x, y), 300)
t1 = time.perf_counter()
HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=1).fit(x, y)
t2 = time.perf_counter()
print(json.dumps({{"lightgbm": t1 - t0, "hist_gradient_boosting": t2 - t1}}))
"""


def run(policy: str, busy: bool, rows: int) -> dict[str, float]:
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(os.cpu_count() or 2)] if busy else []
    try:
        time.sleep(0.5 if busy else 0)
        env = os.environ | {"OMP_WAIT_POLICY": policy}
        out = subprocess.run([sys.executable, "-c", CHILD.format(rows=rows)], env=env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        for p in loops:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cells = [(policy, busy) for busy in (False, True) for policy in ("ACTIVE", "PASSIVE")]
    runs: dict[tuple[str, bool], list[dict[str, float]]] = {c: [] for c in cells}
    for _ in range(args.repeat):
        for cell in cells:
            runs[cell].append(run(*cell, args.rows))
    med = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for c, rs in runs.items()}
    print(f"{args.rows:,} rows x 40 features, {os.cpu_count()} cores, median of {args.repeat}")
    print(f"{'machine':10} {'policy':8} {'lightgbm s':>11} {'hist_gb s':>10}")
    for (policy, busy), m in med.items():
        print(f"{'busy' if busy else 'quiet':10} {policy:8} {m['lightgbm']:11.2f} "
              f"{m['hist_gradient_boosting']:10.2f}")
    for model in ("lightgbm", "hist_gradient_boosting"):
        quiet = med[("ACTIVE", False)][model] / med[("PASSIVE", False)][model]
        busy = med[("ACTIVE", True)][model] / med[("PASSIVE", True)][model]
        print(f"{model}: ACTIVE / PASSIVE time = {quiet:.2f}x quiet, {busy:.2f}x busy")
    print("raw:", json.dumps({f"{p}/{'busy' if b else 'quiet'}": rs for (p, b), rs in runs.items()}))


if __name__ == "__main__":
    main()
