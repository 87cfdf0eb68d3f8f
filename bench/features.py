"""Benchmark: the product's feature stage against a straightforward pandas reference.

    .venv/bin/python bench/features.py --sizes 100000 500000 [--repeat 3] [--work bench/out]

For each size (simulated customers) it builds, once, a world with the product and caches it
under WORK/features/w<N>/: `churn simulate`, `churn ingest`, `churn observe`, with a params
file whose paths point there. Then, per workload:

    early_life  the early-life points (kind == 'early_life'), at every size
    ongoing     the whole ongoing grid (kind == 'ongoing'), at --ongoing-size (default 100000)

the points are written to WORK/features/w<N>/runs/<workload>/observations.parquet and two
contenders run on them, each in a fresh subprocess, --repeat times, alternating:

    pandas   tests/features/reference.py: read_parquet, merge, filter, groupby; writes Parquet
    product  pipeline.stages.features.run (Ibis on DuckDB): the stage's own features.parquet

"seconds" is the job alone (imports and interpreter start excluded); "peak RSS" is the
child's ru_maxrss (VmHWM is recorded as a cross-check). The table gives medians; the ratios
are pandas/product time and product/pandas peak RSS, measured in the same run. Both outputs
are then compared (same rows, counts exact, floats within rtol 1e-9).

On a shared machine each run first waits (up to --quiet-timeout) until other processes use
less than --quiet-cores of CPU, and records how much they used while it ran ("others").
--explain adds DuckDB's profile of the product's compiled SQL per workload (untimed);
--ongoing-size 0 skips the ongoing grid. Raw runs go to WORK/features/results.json and
results-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script, this file's folder comes first on sys.path and `features` would be this
# file: put the repository first instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

WORKLOADS = ("early_life", "ongoing")
ENGINES = ("pandas", "product")
TARGET_SPEED, TARGET_RSS = 2.5, 0.25  # early life at about 50M usage rows: >= 2.5x, <= 0.25x RSS
TARGET_ROWS = 45_000_000  # the "50M" case (55.6M rows at 500k simulated customers)


def _cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def build_world(size: int, work: Path) -> Path:
    """simulate -> ingest -> observe with the product, cached; returns the world folder."""
    import yaml

    w = work / "features" / f"w{size}"
    w.mkdir(parents=True, exist_ok=True)
    log_path = w / "build.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    sim = w / "sim"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # every path of the repo's params, pointed into the world's folder
    params["paths"] = {key: str(w / key) for key in params["paths"]} | {
        "raw": str(sim / "export"), "sim": str(sim)}
    (w / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p = str(w / "params.yaml")
    if not (sim / "truth" / "world.json").exists():
        print(f"[{size}] simulate ...", flush=True)
        log["simulate_s"] = _cli("simulate", "--customers", str(size), "--out", str(sim),
                                 "--params", str(ROOT / "params.yaml"))
    if not (w / "interim" / "_manifest.json").exists():
        print(f"[{size}] ingest ...", flush=True)
        log["ingest_s"] = _cli("ingest", "--params", p, "--raw", str(sim / "export"))
    if not (w / "observations" / "observations.parquet").exists():
        print(f"[{size}] observe ...", flush=True)
        log["observe_s"] = _cli("observe", "--params", p)
    log_path.write_text(json.dumps(log, indent=2))
    return w


def points_file(w: Path, workload: str) -> Path:
    """The observation points of one kind, as the observe stage wrote them (same schema), in
    an observations folder of their own recorded as made from the world's interim folder (the
    features stage checks that its inputs belong together)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline import artifacts

    folder = w / "runs" / workload / "observations"
    out = folder / "observations.parquet"
    if not out.exists():
        table = pq.read_table(w / "observations" / "observations.parquet")
        interim = artifacts.read(artifacts.Input("interim", w / "interim", "ingest"))
        with artifacts.stage_output(folder, "observe", {"interim": interim}) as tmp:
            pq.write_table(table.filter(pc.equal(table["kind"], workload)),
                           tmp / "observations.parquet")
    return out


# -- the measured jobs (child processes) ------------------------------------------------------

def _load_params(w: Path) -> SimpleNamespace:
    """The world's paths, labels and features sections, as the product's dataclasses.

    Only the sections the features stage reads: the rest of params.yaml (the simulator's
    world, models) may change while a long benchmark runs without touching this stage."""
    import yaml

    from features.config import FeatureConfig, LabelConfig
    from pipeline.params import Paths

    raw = yaml.safe_load((w / "params.yaml").read_text())
    return SimpleNamespace(paths=Paths(**raw["paths"]), labels=LabelConfig(**raw["labels"]),
                           features=FeatureConfig(**raw["features"]))


def _run_paths(p: SimpleNamespace, run_dir: Path):
    """The world's paths with the workload's own points and feature folder."""
    import dataclasses

    return dataclasses.replace(p.paths, observations=str(run_dir / "observations"),
                               features=str(run_dir / "features"))


def job_pandas(w: Path, run_dir: Path) -> tuple[float, int]:
    from tests.features.reference import reference_features, vocabulary

    p = _load_params(w)
    t0 = time.perf_counter()
    plans, channels = vocabulary(w / "interim")
    table = reference_features(
        w / "interim", run_dir / "observations" / "observations.parquet", window_days=p.features.window_days,
        recent_days=p.features.recent_days, horizon_days=p.labels.horizon_days,
        plans=plans, channels=channels)
    table.to_parquet(run_dir / "pandas.parquet", index=False)
    return t0, len(table)


def job_product(w: Path, run_dir: Path) -> tuple[float, int]:
    from pipeline.stages import features as stage

    p = _load_params(w)
    paths = _run_paths(p, run_dir)
    t0 = time.perf_counter()
    summary = stage.run(p.features, p.labels, paths)
    return t0, summary.rows


def _vm_hwm_mib() -> float:
    """Peak RSS of this process's own address space (VmHWM; a cross-check of ru_maxrss,
    which on Linux also carries the parent's RSS at fork into the child)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def child(engine: str, w: Path, run_dir: Path) -> None:
    if engine == "compare":
        print(json.dumps({"equal": compare(run_dir)}))
        return
    if engine == "explain":
        print(json.dumps({"profile": explain(w, run_dir)}))
        return
    # each child imports only its own engine, before the clock starts
    if engine == "pandas":
        import tests.features.reference  # noqa: F401
    else:
        import pipeline.stages.features  # noqa: F401
    import pipeline.params  # noqa: F401

    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, rows = (job_pandas if engine == "pandas" else job_product)(w, run_dir)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"engine": engine, "seconds": seconds, "peak_rss_mib": rss,
                      "vm_hwm_mib": _vm_hwm_mib(), "rss_after_import_mib": rss_import,
                      "rows": rows}))


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, /proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_cores: float, timeout: float) -> float:
    """Wait (up to `timeout` s) until other processes use less than `limit_cores` of CPU
    over a 2-second sample; returns the last sample, in cores."""
    deadline = time.monotonic() + timeout
    while True:
        b0 = _busy_seconds()
        time.sleep(2.0)
        busy = (_busy_seconds() - b0) / 2.0
        if busy < limit_cores or time.monotonic() > deadline:
            return busy
        print(f"    (machine busy: {busy:.1f} cores in use by other processes; waiting)",
              flush=True)


def run_child(engine: str, w: Path, run_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--world", str(w),
           "--run-dir", str(run_dir)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))


def measure(engine: str, w: Path, run_dir: Path, quiet: tuple[float, float]) -> dict:
    """One timed run in a fresh process, with how busy the rest of the machine was."""
    before = wait_quiet(*quiet)
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, t0 = _busy_seconds(), time.perf_counter()
    result = run_child(engine, w, run_dir)
    wall, busy = time.perf_counter() - t0, _busy_seconds() - busy0
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    result["process_seconds"] = wall
    result["others_cores_before"] = round(before, 2)
    # CPU used by other processes while this run went on, in cores on average
    result["others_cores_during"] = round(max(busy - own, 0.0) / wall, 2)
    return result


# -- comparison, profile, report --------------------------------------------------------------

def compare(run_dir: Path) -> str:
    """'equal' if the pandas and product tables agree (as tests/features/test_reference.py)."""
    import numpy as np
    import pandas as pd

    from features.catalogue import FEATURES
    from tests.features.reference import POINT_COLUMNS

    a = pd.read_parquet(run_dir / "features" / "features.parquet")
    b = pd.read_parquet(run_dir / "pandas.parquet")
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return "DIFFERENT shape/columns"
    try:
        pd.testing.assert_frame_equal(a[POINT_COLUMNS], b[POINT_COLUMNS])
    except AssertionError:
        return "DIFFERENT point columns"
    bad = []
    for name in FEATURES:
        x, y = a[name].to_numpy("float64", na_value=np.nan), b[name].to_numpy(
            "float64", na_value=np.nan)
        nx, ny = np.isnan(x), np.isnan(y)
        same = (nx == ny) & (nx | np.isclose(x, y, rtol=1e-9, atol=0.0))
        if not same.all():
            bad.append(f"{name} ({(~same).sum()})")
    return "equal" if not bad else "DIFFERENT: " + ", ".join(bad)


def explain(w: Path, run_dir: Path, top: int = 8) -> list[str]:
    """Where the product's time goes on one workload: its compiled SQL, run once under
    DuckDB's profiler (EXPLAIN ANALYZE as JSON; not part of the timed runs). Returns the
    `top` operators by their time (summed over threads), and writes profile.json."""
    import ibis

    from pipeline.stages import features as stage

    p = _load_params(w)
    con, expr, *_ = stage.expression(p.features, p.labels, _run_paths(p, run_dir))
    sql = ibis.to_sql(expr, dialect="duckdb")
    (run_dir / "product.sql").write_text(str(sql))
    raw = con.con  # the DuckDB connection under Ibis
    profile = run_dir / "profile.json"
    raw.execute("SET enable_progress_bar = false")
    raw.execute("PRAGMA enable_profiling = 'json'")
    raw.execute(f"PRAGMA profiling_output = '{profile}'")
    raw.execute(f"COPY ({sql}) TO '{run_dir / 'profiled.parquet'}' (FORMAT parquet)")
    raw.execute("PRAGMA disable_profiling")
    prof = json.loads(profile.read_text())
    ops = []

    def walk(node: dict) -> None:
        info = node.get("extra_info") or {}
        what = next((info[k] for k in ("Function", "Groups", "Join Type", "CTE Name",
                                        "Projections") if k in info), "")
        what = ", ".join(what) if isinstance(what, list) else str(what)
        ops.append((node.get("timing", 0.0), node.get("intermediate_rows", 0),
                    node.get("type", "?"), what.replace("\n", " ")[:90]))
        for c in node.get("children", []):
            walk(c)

    for root in prof["operator"]:
        walk(root)
    q = prof["query"]
    lines = [f"query {q['total_time']:.2f} s wall, {q['cpu_time']:.2f} s cpu; peak buffer "
             f"memory {prof['system']['peak_buffer_memory'] / 2**20:,.0f} MiB; operator times "
             "are summed over threads:"]
    for secs, rows, name, what in sorted(ops, key=lambda o: -o[0])[:top]:
        lines.append(f"{secs:6.2f} s {rows:>12,} rows  {name}  {what}")
    return lines


def machine() -> dict:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                         capture_output=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, text=True,
                           capture_output=True).stdout.strip()
    from importlib.metadata import version

    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "git_sha": sha,
            "worktree_dirty": bool(dirty), "nproc": os.cpu_count(),
            "mem_total_gib": round(int(mem.split()[1]) / 2**20, 1),
            "cpu": next((line.split(":", 1)[1].strip()
                         for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), platform.processor()),
            "python": platform.python_version(),
            **{lib: version(lib) for lib in ("pandas", "pyarrow", "duckdb", "ibis-framework")}}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000],
                    help="simulated customers per world (early-life workload at each)")
    ap.add_argument("--ongoing-size", type=int, default=100_000,
                    help="world for the ongoing-grid workload (0: skip it)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--explain", action="store_true",
                    help="also profile the product's SQL (EXPLAIN ANALYZE) per workload")
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="before each run, wait until other processes use less CPU than this")
    ap.add_argument("--quiet-timeout", type=float, default=900,
                    help="longest wait for a quiet machine, seconds")
    ap.add_argument("--child", choices=[*ENGINES, "compare", "explain"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.world, args.run_dir)
        return

    import pyarrow.parquet as pq

    work = args.work.resolve()
    sizes = list(dict.fromkeys([*args.sizes, *([args.ongoing_size] if args.ongoing_size
                                                 else [])]))
    worlds = {n: build_world(n, work) for n in sizes}
    plan = [(n, "early_life") for n in args.sizes]
    if args.ongoing_size:
        plan.append((args.ongoing_size, "ongoing"))
    info = machine()
    print(f"git {info['git_sha']}{' (dirty)' if info['worktree_dirty'] else ''}, "
          f"{info['date']}, {info['nproc']} cores, {info['mem_total_gib']} GiB", flush=True)
    results = []
    for n, workload in plan:
        w = worlds[n]
        pts = points_file(w, workload)
        run_dir = pts.parent.parent
        usage_rows = pq.ParquetFile(w / "interim" / "usage.parquet").metadata.num_rows
        points = pq.ParquetFile(pts).metadata.num_rows
        runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
        for i in range(args.repeat):
            for engine in (ENGINES if i % 2 == 0 else ENGINES[::-1]):
                r = measure(engine, w, run_dir, (args.quiet_cores, args.quiet_timeout))
                runs[engine].append(r)
                print(f"  {n:>7} {workload:10s} {engine:7s} {r['seconds']:7.2f} s "
                      f"{r['peak_rss_mib']:7.0f} MiB  (others: {r['others_cores_during']:.2f}"
                      " cores)", flush=True)
        row = {"customers": n, "workload": workload, "usage_rows": usage_rows, "points": points,
               "runs": runs, "equal": run_child("compare", w, run_dir)["equal"]}
        for e in ENGINES:
            row[f"{e}_s"] = _median(runs[e], "seconds")
            row[f"{e}_rss_mib"] = _median(runs[e], "peak_rss_mib")
        row["speed_ratio"] = row["pandas_s"] / row["product_s"]
        row["rss_ratio"] = row["product_rss_mib"] / row["pandas_rss_mib"]
        if args.explain:
            row["profile"] = run_child("explain", w, run_dir)["profile"]
            print("\n".join(f"    {line}" for line in row["profile"]), flush=True)
        results.append(row)

    print(f"\n{'customers':>9} {'workload':10} {'usage rows':>11} {'points':>9} "
          f"{'pandas s':>8} {'RSS MiB':>8} {'product s':>9} {'RSS MiB':>8} "
          f"{'speed':>6} {'RSS':>6}  equal")
    for r in results:
        print(f"{r['customers']:>9,} {r['workload']:10} {r['usage_rows']:>11,} "
              f"{r['points']:>9,} {r['pandas_s']:>8.2f} {r['pandas_rss_mib']:>8.0f} "
              f"{r['product_s']:>9.2f} {r['product_rss_mib']:>8.0f} "
              f"{r['speed_ratio']:>5.2f}x {r['rss_ratio']:>5.2f}x  {r['equal']}")
    early = [r for r in results if r["workload"] == "early_life"]
    if early and max(r["usage_rows"] for r in early) < TARGET_ROWS:
        print("target: judged at about 50M usage rows (--sizes 500000); none in this run")
    elif early:
        top = max(early, key=lambda r: r["usage_rows"])
        met = top["speed_ratio"] >= TARGET_SPEED and top["rss_ratio"] <= TARGET_RSS
        print(f"target (early life, {top['usage_rows']:,} usage rows): >= {TARGET_SPEED}x "
              f"faster and <= {TARGET_RSS}x peak RSS: {'MET' if met else 'MISSED'} "
              f"({top['speed_ratio']:.2f}x, {top['rss_ratio']:.2f}x)")
    record = json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]),
                         "machine": info, "results": results}, indent=2)
    out = work / "features" / "results.json"
    out.write_text(record)
    (out.parent / f"results-{info['date'].replace(':', '')}.json").write_text(record)
    print(f"raw runs: {out}")


if __name__ == "__main__":
    main()
