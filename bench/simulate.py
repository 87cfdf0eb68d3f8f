"""Benchmark `churn simulate`: wall time, rows per second and peak RSS by world size.

Each size runs in a fresh process (`python -m pipeline.cli simulate ...`), so imports and
start-up are included, as a user sees them. Usage: python bench/simulate.py [--sizes 20000 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(customers: int, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipeline.cli", "simulate", "--customers", str(customers),
           "--out", str(out), "--params", str(ROOT / "params.yaml")]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads((out / "truth" / "world.json").read_text())
    rows = sum(summary["rows"].values())
    size = sum(f.stat().st_size for f in (out / "export").iterdir())
    return {"customers": customers, "wall_s": round(wall, 1), "rows": rows,
            "rows_per_s": round(rows / wall), "truth_points": summary["truth_points"],
            "export_mb": round(size / 2**20), "peak_rss_mib": round(max(peak, before) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 500_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    print(f"{'customers':>10} {'wall s':>8} {'rows':>12} {'rows/s':>10} {'truth pts':>10} "
          f"{'export MB':>9} {'peak RSS MiB':>12}")
    for n in args.sizes:
        out = args.out / f"sim-{n}"
        r = run_one(n, out)
        print(f"{r['customers']:>10,} {r['wall_s']:>8} {r['rows']:>12,} {r['rows_per_s']:>10,} "
              f"{r['truth_points']:>10,} {r['export_mb']:>9} {r['peak_rss_mib']:>12,}", flush=True)
        subprocess.run(["rm", "-rf", str(out)], check=True)
    print(f"machine: {os.cpu_count()} cores; targets: 500k customers < 300 s, peak RSS < 6 GiB")


if __name__ == "__main__":
    main()
