"""Benchmark: `records.ingest.ingest` against a bare DuckDB read-sort-write of usage.csv.

    .venv/bin/python bench/ingest.py                 # 10M usage rows (bench/out/raw_10m)
    .venv/bin/python bench/ingest.py --rows 50000000 # the 50M case
    .venv/bin/python bench/ingest.py --keep          # reuse an existing raw folder

The raw folder is generated with numpy/pyarrow from a fixed seed, in the proportions of the
simulator's export (per customer: ~100 usage batches, 5 periods, 2.5 top-ups, 2 tickets,
0.7 NPS answers). Each contender runs in a fresh subprocess so that peak RSS (ru_maxrss) and
CPU time are its own:

    (a) copy:   COPY (SELECT * FROM read_csv('usage.csv') ORDER BY customer_id, ts) TO x.parquet
    (b) ingest: records.ingest.ingest(...) on the whole folder (all six tables)

Output (and the generated data) stays under bench/out/, which git ignores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TZ = "Asia/Tehran"
NOW = dt.datetime(2025, 6, 1, 12, 0)  # fixed "wall clock" for the ingest run


def generate(raw: Path, rows: int, customers: int, seed: int = 7) -> None:
    """Write a contract-shaped raw folder: CSV files, usage with `rows` rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    day0 = np.datetime64("2021-01-01")
    end = np.datetime64("2025-01-01")
    span = int((end - day0).astype(int))

    ids = np.arange(1, customers + 1, dtype=np.int64)
    signup = day0 + rng.integers(0, span - 400, customers).astype("timedelta64[D]")
    referred = np.where(
        (rng.random(customers) < 0.1) & (ids > 1000),
        np.char.add("R", (rng.integers(1, 1000, customers)).astype(str)),
        "",
    )
    channels = np.array(["organic", "ads", "partner", "referral"])
    write = pcsv.WriteOptions(include_header=True)
    pcsv.write_csv(
        pa.table(
            {
                "customer_id": ids,
                "signup_date": signup,
                "channel": channels[rng.integers(0, 4, customers)],
                "referral_code": np.char.add("R", ids.astype(str)),
                "referred_by": referred,
            }
        ),
        raw / "customers.csv",
        write,
    )

    periods = 5
    sub_cust = np.repeat(ids, periods)
    k = np.tile(np.arange(periods), customers)
    start = np.repeat(signup, periods) + (k * 30).astype("timedelta64[D]")
    outcome = np.where(k == periods - 1, "open", "renewed")
    pcsv.write_csv(
        pa.table(
            {
                "customer_id": sub_cust,
                "period_start": start,
                "period_end": start + np.timedelta64(30, "D"),
                "plan": np.where(k % 2 == 0, "basic", "pro"),
                "fee": np.where(k % 2 == 0, 10.0, 25.0),
                "outcome": outcome,
            }
        ),
        raw / "subscriptions.csv",
        write,
    )

    def events(n: int) -> tuple[np.ndarray, np.ndarray]:
        cust = rng.integers(1, customers + 1, n)
        first = signup[cust - 1].astype("datetime64[s]")
        room = (end.astype("datetime64[s]") - first).astype(np.int64)
        ts = first + (rng.random(n) * room).astype(np.int64).astype("timedelta64[s]")
        return cust, ts

    cust, ts = events(rows)
    pcsv.write_csv(
        pa.table({"customer_id": cust, "ts": ts, "messages": rng.poisson(40, rows)}),
        raw / "usage.csv",
        write,
    )
    n = max(rows // 40, 1000)
    cust, ts = events(n)
    pcsv.write_csv(
        pa.table({"customer_id": cust, "ts": ts, "amount": rng.gamma(2.0, 50.0, n).round(2)}),
        raw / "charges.csv",
        write,
    )
    n = max(rows // 50, 1000)
    cust, ts = events(n)
    resolved = ts + rng.integers(600, 86400 * 3, n).astype("timedelta64[s]")
    pcsv.write_csv(
        pa.table(
            {
                "customer_id": cust,
                "opened_at": ts,
                "topic": np.array(["billing", "delivery", "technical", "account", "other"])[
                    rng.integers(0, 5, n)
                ],
                "resolved_at": pa.array(resolved, mask=rng.random(n) < 0.05),
            }
        ),
        raw / "tickets.csv",
        write,
    )
    n = max(rows // 150, 1000)
    cust, ts = events(n)
    pcsv.write_csv(
        pa.table({"customer_id": cust, "ts": ts, "score": rng.integers(0, 11, n)}),
        raw / "nps.csv",
        write,
    )


def run_copy(raw: Path, work: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{raw / 'usage.csv'}') ORDER BY customer_id, ts) "
        f"TO '{work / 'x.parquet'}' (FORMAT parquet)"
    )


def run_ingest(raw: Path, work: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from records.config import IngestConfig
    from records.ingest import ingest

    interim, quarantine = work / "interim", work / "quarantine"
    interim.mkdir()
    quarantine.mkdir()
    config = IngestConfig(timezone=TZ, calendar="gregorian", as_of=None, max_bad_share=0.05)
    report = ingest(raw, interim, quarantine, config, now=NOW)
    (work / "manifest.json").write_text(json.dumps(report.to_manifest(str(raw)), indent=2))


def child(which: str, raw: Path, work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    (run_copy if which == "copy" else run_ingest)(raw, work)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_mb = usage.ru_maxrss / 1024  # Linux: KiB
    cpu = usage.ru_utime + usage.ru_stime
    result = {"which": which, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss_mb}
    print(json.dumps(result))


def measure(which: str, raw: Path, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--raw", str(raw), "--work", str(work)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="usage rows (default 10M)")
    ap.add_argument("--customers", type=int, help="default: rows / 100")
    ap.add_argument("--keep", action="store_true", help="reuse the raw folder if it exists")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each contender")
    ap.add_argument("--child", choices=["copy", "ingest"], help=argparse.SUPPRESS)
    ap.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.raw, args.work)
        return

    raw = OUT / f"raw_{args.rows}"
    if not (args.keep and (raw / "usage.csv").exists()):
        shutil.rmtree(raw, ignore_errors=True)
        t0 = time.perf_counter()
        generate(raw, args.rows, args.customers or max(args.rows // 100, 1000))
        print(f"generated {raw} in {time.perf_counter() - t0:.1f}s")
    size = (raw / "usage.csv").stat().st_size / 2**20
    print(f"usage.csv: {args.rows:,} rows, {size:,.0f} MiB")
    results: dict[str, list[dict]] = {"copy": [], "ingest": []}
    for _ in range(args.repeat):
        for which in ("copy", "ingest"):
            r = measure(which, raw, OUT / f"work_{which}")
            results[which].append(r)
            print(
                f"  {which:7s} {r['seconds']:7.2f}s wall  {r['cpu_seconds']:7.2f}s cpu  "
                f"peak RSS {r['peak_rss_mb']:8.0f} MiB"
            )
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    ratio = best["ingest"]["seconds"] / best["copy"]["seconds"]
    cpu = {k: statistics.median(r["cpu_seconds"] for r in v) for k, v in results.items()}
    rss = best["ingest"]["peak_rss_mb"] / best["copy"]["peak_rss_mb"]
    print(
        f"ingest / copy: {ratio:.2f}x wall (best of {args.repeat}), "
        f"{cpu['ingest'] / cpu['copy']:.2f}x cpu (median), {rss:.2f}x peak RSS"
    )
    (OUT / f"result_{args.rows}.json").write_text(
        json.dumps(
            {"rows": args.rows, "runs": results, "wall_ratio": ratio,
             "cpu_ratio": cpu["ingest"] / cpu["copy"], "rss_ratio": rss},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
