"""Benchmark `churn report` on a simulated world, as a ratio to DuckDB reading the interim
tables once, both measured in the same run (issue 11: 500k customers in under 30 s on 2 cores).

    .venv/bin/python bench/report.py                    # 500k customers (bench/out/report-500000)
    .venv/bin/python bench/report.py --customers 100000
    .venv/bin/python bench/report.py --keep             # reuse the simulated and ingested world

Setup (not timed): `churn simulate --customers N --format parquet` and `churn ingest` into
bench/out/report-N/ (git ignores bench/out). Then, each in a fresh process so that imports,
peak RSS and CPU time are its own, `--repeat` times in turn:

    (a) read:   DuckDB reads every interim table into Arrow once (all six, usage included),
                and, apart, the four the report reads (customers, subscriptions, charges, nps)
    (b) report: pipeline.stages.report.run with the repo's params (report per month)

The ratio is median(report) / median(read of all tables).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
REPORT_TABLES = ("customers", "subscriptions", "charges", "nps")

READ = """
import json, sys, time
from pathlib import Path
import duckdb
interim, tables = Path(sys.argv[1]), sys.argv[2].split(",")
con = duckdb.connect()
t0 = time.perf_counter()
rows = 0
for name in tables:
    path = interim / f"{name}.parquet"
    if path.exists():
        rows += con.execute(f"SELECT * FROM read_parquet('{path}')").to_arrow_table().num_rows
import resource
print(json.dumps({"s": time.perf_counter() - t0, "rows": rows,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

REPORT = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pipeline.params import load_params as load
from pipeline.stages import report
p = load(Path(sys.argv[1]))
t1 = time.perf_counter()
s = report.run(p.report, p.labels, p.paths, log=lambda m: None)
import resource
print(json.dumps({"s": time.perf_counter() - t1, "imports_s": t1 - t0, "holdout": s.holdout,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child(code: str, *args: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.strip().splitlines()[-1])
    return result | {"wall_s": wall, "cpu_s": (after.ru_utime + after.ru_stime)
                     - (before.ru_utime + before.ru_stime),
                     "peak_rss_mib": result["rss"] / 1024}  # the child's own (RUSAGE_CHILDREN
                                                             # is the max over all children)


def setup(customers: int, folder: Path, keep: bool) -> Path:
    """Simulate and ingest (untimed); returns the params file the report reads."""
    params = folder / "params.yaml"
    if keep and (folder / "interim" / "_stage.json").exists() and params.exists():
        return params
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["paths"] |= {key: str(folder / key) for key in ("interim", "observations", "features",
                                                        "models", "evaluation")}
    raw["paths"] |= {"sim": str(folder / "sim"), "raw": str(folder / "sim" / "export"),
                     "registered": str(folder / "registered.json"),
                     "report": str(folder / "report")}
    folder.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    cli = [sys.executable, "-m", "pipeline.cli"]
    for step, cmd in (("simulate", [*cli, "simulate", "--params", str(params), "--customers",
                                    str(customers), "--format", "parquet", "--out",
                                    str(folder / "sim")]),
                      ("ingest", [*cli, "ingest", "--params", str(params)])):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"setup: {step} {time.perf_counter() - t0:.0f} s", flush=True)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/report-N")
    args = parser.parse_args()
    folder = OUT / f"report-{args.customers}"
    params = setup(args.customers, folder, args.keep)
    interim = folder / "interim"
    manifest = json.loads((interim / "_manifest.json").read_text())
    every = [name for name, t in manifest["tables"].items() if t.get("file")]
    runs: dict[str, list[dict]] = {"read_all": [], "read_report": [], "report": []}
    for _ in range(args.repeat):
        runs["read_all"].append(_child(READ, str(interim), ",".join(every)))
        runs["read_report"].append(_child(READ, str(interim), ",".join(REPORT_TABLES)))
        runs["report"].append(_child(REPORT, str(params)))
    med = {k: statistics.median(r["s"] for r in v) for k, v in runs.items()}
    result = {
        "customers": args.customers, "cores": os.cpu_count(), "repeat": args.repeat,
        "interim_rows": runs["read_all"][0]["rows"],
        "report_table_rows": runs["read_report"][0]["rows"],
        "read_all_s": round(med["read_all"], 2), "read_report_tables_s": round(med["read_report"], 2),
        "report_s": round(med["report"], 2),
        "report_imports_s": round(statistics.median(r["imports_s"] for r in runs["report"]), 2),
        "report_peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs["report"])),
        "read_all_peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs["read_all"])),
        "ratio_to_read_all": round(med["report"] / med["read_all"], 1),
        "ratio_to_read_report_tables": round(med["report"] / med["read_report"], 1),
        "all_report_s": [round(r["s"], 2) for r in runs["report"]],
        "holdout": runs["report"][0]["holdout"],
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"target: 500k customers in under 30 s on 2 cores: report {med['report']:.1f} s "
          f"at {args.customers:,} customers = {result['ratio_to_read_all']}x DuckDB reading "
          "the interim tables once")


if __name__ == "__main__":
    main()
