"""Benchmark: the features stage on DuckDB against Spark local[2], ratios in one run.

    .venv/bin/python bench/spark.py                       # about 10M usage rows (90k customers)
    .venv/bin/python bench/spark.py --sizes 450000        # about 50M usage rows (optional)
    .venv/bin/python bench/spark.py --spark-conf spark.driver.memory=4g --repeat 2

The world is built once by the product and cached under WORK/features/w<N>/ (bench/features.py's
`build_world`: simulate, ingest, observe, with a params file whose paths point there; about
111 usage rows per customer, so 90k customers give about 10M usage rows). The job is the
whole features stage, `pipeline.stages.features.run`, on every observation point of the world,
as `churn features` runs it: DuckDB with `features.engine: duckdb`, Spark with `features.engine:
spark` and `features.spark.master: local[2]` (plus any --spark-conf). Each run is a fresh
process, so Spark's time includes starting the JVM and its session (reported apart as
`session_s`: connecting, reading the Parquet footers, the vocabulary queries).

"seconds" is the job's wall time (interpreter start and imports excluded); "peak RSS" is the
peak of the summed RSS of the job's whole process tree (the Python process and, for Spark, the
JVM it launches), sampled every 50 ms; "sum of HWM" adds each process's own high-water mark
(an upper bound). Ratios are Spark/DuckDB. The two feature tables are then compared (same
points, counts exact, floats within 1e-9 relative, nulls in the same places).

On a shared machine each run first waits (up to --quiet-timeout) until other processes use
less than --quiet-cores of CPU, as bench/features.py does. Raw runs go to WORK/spark/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

ENGINES = ("duckdb", "spark")
ROWS_PER_CUSTOMER = 111  # usage rows per simulated customer (bench/RESULTS.md: 55.6M at 500k)


def _bench_features():
    """bench/features.py as a module (its name would shadow the `features` package)."""
    spec = importlib.util.spec_from_file_location("bench_features", HERE / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the measured job (child process) ---------------------------------------------------------

def child(engine: str, w: Path, run_dir: Path, master: str, conf: dict[str, str]) -> None:
    import pipeline.stages.features as stage
    from features.config import SparkConfig
    from pipeline import engines, tables
    from pipeline.params import load_params

    if engine == "spark":
        import ibis.backends.pyspark  # noqa: F401
        import pyspark.sql  # noqa: F401
    p = load_params(w / "params.yaml")
    feat = dataclasses.replace(p.features, engine=engine,
                               spark=SparkConfig(master=master, conf=conf))
    paths = dataclasses.replace(p.paths, features=str(run_dir / engine / "features"))
    t0 = time.perf_counter()
    if engine == "spark":  # the session alone, measured apart (the stage reuses it)
        engines.connect("spark", tables.manifest(paths).timezone, feat.spark)
    t_session = time.perf_counter() - t0
    summary = stage.run(feat, p.labels, paths)
    seconds = time.perf_counter() - t0
    print(json.dumps({"engine": engine, "seconds": seconds, "session_s": t_session,
                      "rows": summary.rows, "hwm_sum_mib": _hwm_tree_mib(),
                      "python_maxrss_mib": resource.getrusage(
                          resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def _hwm_tree_mib() -> float:
    """Sum of VmHWM over this process and its descendants (the JVM is still alive here)."""
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    total += int(line.split()[1])
    return total / 1024


# -- the parent: one run, its process tree sampled ---------------------------------------------

def _tree(pid: int, cpu: dict[int, float]) -> int:
    """The summed RSS of a process tree; records each process's CPU seconds in `cpu`."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
            t = proc.cpu_times()
            cpu[proc.pid] = max(cpu.get(proc.pid, 0.0), t.user + t.system)
    return total


def run_child(engine: str, w: Path, run_dir: Path, master: str, conf: dict[str, str]) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--world", str(w),
           "--run-dir", str(run_dir), "--master", master,
           *[f"--spark-conf={k}={v}" for k, v in conf.items()]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak, cpu, stop = [0], {}, threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree(proc.pid, cpu))
            stop.wait(0.05)

    busy0, t0 = busy_seconds(), time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall, busy = time.perf_counter() - t0, busy_seconds() - busy0
    if proc.returncode:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"{engine} run failed ({proc.returncode})")
    result = json.loads(next(line for line in reversed(out.splitlines())
                             if line.startswith("{")))
    result["peak_rss_mib"] = peak[0] / 2**20
    result["cpu_s"] = sum(cpu.values())  # the job's own process tree (sampled)
    # CPU used by other processes while this run went on, in cores on average
    result["others_cores_during"] = round(max(busy - result["cpu_s"], 0.0) / wall, 2)
    return result


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, /proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def compare(a_path: Path, b_path: Path) -> dict:
    """Same points in the same order, exact non-floats, floats within 1e-9 relative."""
    import numpy as np
    import pyarrow.parquet as pq

    a, b = pq.read_table(a_path), pq.read_table(b_path)
    if a.column_names != b.column_names or a.num_rows != b.num_rows:
        return {"equal": False, "max_rel": float("nan"), "different": ["shape/columns"]}
    if [f.type for f in a.schema] != [f.type for f in b.schema]:
        return {"equal": False, "max_rel": float("nan"), "different": ["dtypes"]}
    worst, bad = 0.0, []
    for name in a.column_names:
        x, y = a[name].to_pandas(), b[name].to_pandas()
        nx, ny = x.isna().to_numpy(), y.isna().to_numpy()
        if (nx != ny).any():
            bad.append(f"{name} nulls")
        elif x.dtype.kind == "f":
            u, v = x.to_numpy()[~nx], y.to_numpy()[~ny]
            scale = np.maximum(np.abs(u), np.abs(v))
            rel = np.divide(np.abs(u - v), scale, out=np.zeros_like(u), where=scale > 0)
            worst = max(worst, float(rel.max(initial=0.0)))
            if (rel > 1e-9).any():
                bad.append(name)
        elif not x[~nx].reset_index(drop=True).equals(y[~ny].reset_index(drop=True)):
            bad.append(name)
    return {"equal": not bad, "max_rel": worst, "different": bad}


def _versions() -> dict:
    from importlib.metadata import version

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return {"pyspark": version("pyspark"), "java": java.splitlines()[0] if java else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[90_000],
                    help="simulated customers per world (90000: about 10M usage rows; "
                         "450000: about 50M)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--quiet-timeout", type=float, default=900)
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    conf = dict(kv.split("=", 1) for kv in args.spark_conf)
    if args.child:
        child(args.child, args.world, args.run_dir, args.master, conf)
        return

    import pyarrow.parquet as pq

    bf = _bench_features()
    work = args.work.resolve()
    info = bf.machine() | _versions()
    print(f"git {info['git_sha']}{' (dirty)' if info['worktree_dirty'] else ''}, "
          f"{info['date']}, {info['nproc']} cores, {info['mem_total_gib']} GiB; pyspark "
          f"{info['pyspark']}, {info['java']}", flush=True)
    results = []
    for n in args.sizes:
        w = bf.build_world(n, work)
        run_dir = work / "spark" / f"w{n}"
        run_dir.mkdir(parents=True, exist_ok=True)
        usage_rows = pq.ParquetFile(w / "interim" / "usage.parquet").metadata.num_rows
        points = pq.ParquetFile(w / "observations" / "observations.parquet").metadata.num_rows
        runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
        for i in range(args.repeat):
            for engine in (ENGINES if i % 2 == 0 else ENGINES[::-1]):
                others = bf.wait_quiet(args.quiet_cores, args.quiet_timeout)
                r = run_child(engine, w, run_dir, args.master, conf)
                r["others_cores_before"] = round(others, 2)
                runs[engine].append(r)
                print(f"  {n:>7} {engine:6s} {r['seconds']:8.2f} s (session "
                      f"{r['session_s']:.1f} s, CPU {r['cpu_s']:.0f} s) peak RSS "
                      f"{r['peak_rss_mib']:7.0f} MiB (sum of HWM {r['hwm_sum_mib']:.0f}; others: "
                      f"{r['others_cores_during']:.2f} cores)", flush=True)
        row = {"customers": n, "usage_rows": usage_rows, "points": points, "runs": runs,
               **compare(run_dir / "duckdb" / "features" / "features.parquet",
                         run_dir / "spark" / "features" / "features.parquet")}
        for e in ENGINES:
            row[f"{e}_s"] = statistics.median(r["seconds"] for r in runs[e])
            row[f"{e}_rss_mib"] = statistics.median(r["peak_rss_mib"] for r in runs[e])
        row["time_ratio"] = row["spark_s"] / row["duckdb_s"]
        row["rss_ratio"] = row["spark_rss_mib"] / row["duckdb_rss_mib"]
        results.append(row)

    print(f"\n{'customers':>9} {'usage rows':>11} {'points':>9} {'duckdb s':>8} {'RSS MiB':>8} "
          f"{'spark s':>8} {'RSS MiB':>8} {'time':>6} {'RSS':>6}  equal (max rel)")
    for r in results:
        print(f"{r['customers']:>9,} {r['usage_rows']:>11,} {r['points']:>9,} "
              f"{r['duckdb_s']:>8.2f} {r['duckdb_rss_mib']:>8.0f} {r['spark_s']:>8.2f} "
              f"{r['spark_rss_mib']:>8.0f} {r['time_ratio']:>5.2f}x {r['rss_ratio']:>5.2f}x  "
              f"{r['equal']} ({r['max_rel']:.2g})")
    out = work / "spark" / "results.json"
    out.write_text(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]),
                               "machine": info, "master": args.master, "spark_conf": conf,
                               "results": results}, indent=2))
    print(f"ratios are Spark/DuckDB, measured in this run; raw runs: {out}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
