"""Benchmark: `churn backtest --replay N` on the committed worlds, and the level candidates.

    .venv/bin/python bench/replay.py                         # 12 weeks on worlds b, c, drift
    .venv/bin/python bench/replay.py --weeks 8 --worlds params.yaml --fresh   # the 10-min target

For each world (a params file) it builds the export when missing (`churn simulate`, `churn
ingest`), the pipeline's model and its `churn evaluate` metrics (unless --no-pipeline), runs `churn
backtest --replay N --no-track` as a user would (timed; with `--fresh` the
world's replay folder is removed first, so every week is trained), then reads the replay's
weeks.csv and reports, per level candidate of models.level (none, recent, trend, blend): the mean and
largest |mean probability - mean truth| over the weeks (on the scored customers the simulator's
truth covers), the same against realised churn (all scored customers), and the share of weeks
whose realised AUC and Brier fall inside the expected band. The candidates are compared on the
same models: each week's model keeps all three shifts in its train_summary.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CHURN = str(Path(sys.executable).with_name("churn"))
CANDIDATES = ("none", "recent", "trend", "blend")


def _run(*args: str) -> None:
    subprocess.run([CHURN, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def replay(world: str, weeks: int, fresh: bool, no_pipeline: bool) -> tuple[float, Path]:
    sys.path.insert(0, str(ROOT))
    from pipeline.params import load_params
    from pipeline.stages.replay import ReplayConfig, root

    p = load_params(ROOT / world)
    if not (ROOT / p.paths.interim / "_stage.json").is_file():
        print(f"{world}: simulate, ingest", flush=True)
        _run("simulate", "--params", world)
        _run("ingest", "--params", world)
    if not no_pipeline:
        # `churn evaluate`'s test-slice AUC, which the backtest compares the replayed weeks
        # with, from the code and settings at hand (a committed report may be older)
        print(f"{world}: observe, features, train, evaluate", flush=True)
        for stage in ("observe", "features", "train", "evaluate"):
            _run(stage, "--params", world)
    folder = root(p.paths, ReplayConfig(p.labels, p.features, p.train, p.score, p.report))
    if fresh and (ROOT / folder).exists():
        shutil.rmtree(ROOT / folder)
    print(f"{world}: churn backtest --replay {weeks}", flush=True)
    start = time.perf_counter()
    _run("backtest", "--replay", str(weeks), "--no-track", "--params", world)
    return time.perf_counter() - start, ROOT / folder / "backtest" / "weeks.csv"


def summary(world: str, weeks: pd.DataFrame) -> list[dict]:
    rows = []
    for c in CANDIDATES:
        truth = (weeks[f"mean_probability_truth_{c}"] - weeks["mean_truth"]).abs()
        real = (weeks[f"mean_probability_{c}"] - weeks["churn"]).abs()
        rows.append({"world": world, "level": c, "weeks": len(weeks),
                     "truth mean": truth.mean(), "truth max": truth.max(),
                     "churn mean": real.mean(), "churn max": real.max()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+",
                    default=["worlds/b.yaml", "worlds/c.yaml", "worlds/drift.yaml"])
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--fresh", action="store_true", help="remove earlier replays first")
    ap.add_argument("--no-run", action="store_true", help="only summarise existing replays")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="do not run observe..evaluate first (the evaluate AUC may be older)")
    args = ap.parse_args()
    rows, timing, agreement = [], [], []
    for world in args.worlds:
        if args.no_run:
            sys.path.insert(0, str(ROOT))
            from pipeline.params import load_params
            from pipeline.stages.replay import ReplayConfig, root

            p = load_params(ROOT / world)
            path = ROOT / root(p.paths, ReplayConfig(p.labels, p.features, p.train, p.score,
                                                     p.report)) / "backtest" / "weeks.csv"
            seconds = float("nan")
        else:
            seconds, path = replay(world, args.weeks, args.fresh, args.no_pipeline)
        weeks = pd.read_csv(path)
        notes = json.loads((path.parent / "summary.json").read_text())["notes"]
        agreement += [f"{world}: {n}" for n in notes if "churn evaluate" in n]
        rows += summary(world, weeks)
        timing.append({"world": world, "weeks": len(weeks), "seconds": round(seconds, 1),
                       "auc inside": weeks["auc_inside"].mean(),
                       "brier inside": weeks["brier_inside"].mean(),
                       "auc mean": weeks["auc"].mean(), "churn mean": weeks["churn"].mean()})
    pd.set_option("display.width", 200)
    print(pd.DataFrame(timing).round(3).to_string(index=False))
    print()
    print("|mean probability - mean truth| and |mean probability - realised churn| per week")
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    print()
    print("\n".join(agreement))


if __name__ == "__main__":
    main()
