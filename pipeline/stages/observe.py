"""Stage `observe`: observation points, churn labels and censoring (definitions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import observations as obs
from features.config import LabelConfig
from pipeline import artifacts, tables
from pipeline.params import Paths

STAGE = "observe"


@dataclass
class ObserveSummary:
    as_of: str
    runs: int
    reactivations: int
    by_kind: dict[str, dict[str, float]]  # kind -> points, labelled, churn rate
    by_state: dict[str, int]  # renewal_due, pending, in_period -> points
    churned_before_early_life: int  # runs that ended before day `early_life_days`
    truth: bool  # the simulator's truth was attached (the export is the simulated one)


def _read(path: Path) -> pd.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{path}')").df()


def arrow(points: pd.DataFrame, truth: pd.Series) -> pa.Table:
    """The observations file's columns and types (features read it; a backtest writes its own
    points the same way)."""
    return pa.table({
        "customer_id": pa.array(points["customer_id"].to_numpy()),
        "t": pa.array(points["t"].to_numpy().astype("datetime64[D]"), pa.date32()),
        "kind": pa.array(points["kind"].to_numpy(dtype=object), pa.string()),
        "run": pa.array(points["run"].to_numpy(), pa.int64()),
        "run_start": pa.array(points["run_start"].to_numpy().astype("datetime64[D]"), pa.date32()),
        "state": pa.array(points["state"].to_numpy(dtype=object), pa.string()),
        "label": pa.array(points["label"].astype("float64").to_numpy(), pa.int8(),
                          from_pandas=True),
        "truth": pa.array(truth.to_numpy(dtype="float64"), pa.float64(), from_pandas=True),
    })


def interim_frames(paths: Paths, m: tables.Manifest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """customers and subscriptions of the interim folder, dates as datetime64[s]."""
    files = tables.interim_files(paths, m)
    customers = _read(files["customers"])
    subs = _read(files["subscriptions"])
    for frame, cols in ((customers, ["signup_date"]), (subs, ["period_start", "period_end"])):
        for c in cols:
            frame[c] = frame[c].astype("datetime64[s]")
    return customers, subs


def run(labels: LabelConfig, paths: Paths) -> ObserveSummary:
    """Points of the ingested export; the simulator's truth is attached only when that export
    is the simulated one beside it (checked by file hashes)."""
    artifacts.claim(Path(paths.observations), STAGE)
    inputs = artifacts.read_all(*tables.inputs(paths, "interim"))
    m = tables.manifest(paths)
    sim = tables.simulated_truth(paths, m)
    truth_file = None
    if sim is not None:
        truth_file, inputs["sim"] = sim
    customers, subs = interim_frames(paths, m)
    runs = obs.runs(customers, subs, view=m.as_of, grace_days=labels.grace_days)
    points = obs.points(runs, as_of=m.as_of, every_days=labels.every_days,
                        min_tenure_days=labels.min_tenure_days,
                        early_life_days=labels.early_life_days, grace_days=labels.grace_days)
    points["label"] = obs.label(points, runs, as_of=m.as_of, horizon_days=labels.horizon_days,
                                grace_days=labels.grace_days)
    points["state"] = obs.state(points, subs)
    truth = pd.Series(np.nan, index=points.index)
    if truth_file is not None:
        t = pd.read_parquet(truth_file, columns=["customer_id", "t", "truth"])
        t["t"] = pd.to_datetime(t["t"]).astype("datetime64[s]")
        truth = points[["customer_id", "t"]].merge(t, on=["customer_id", "t"], how="left")["truth"]
    table = arrow(points, truth)
    with artifacts.stage_output(Path(paths.observations), STAGE, inputs) as tmp:
        pq.write_table(table, tmp / paths.observations_table.name)

    tenure = (runs["churn"] - runs["run_start"]).dt.days
    by_kind = {}
    for kind, grp in points.groupby("kind", sort=True):
        labelled = grp["label"].dropna()
        by_kind[kind] = {"points": len(grp), "labelled": len(labelled),
                         "churn_rate": float(labelled.mean()) if len(labelled) else float("nan"),
                         "with_truth": int(truth[grp.index].notna().sum())}
    return ObserveSummary(
        as_of=m.as_of.isoformat(), runs=len(runs), reactivations=int((runs["run"] > 0).sum()),
        by_kind=by_kind,
        by_state={k: int(v) for k, v in points["state"].value_counts().sort_index().items()},
        churned_before_early_life=int((tenure < labels.early_life_days).sum()),
        truth=truth_file is not None,
    )


def render(s: ObserveSummary, console, *, labels: LabelConfig, paths: Paths) -> None:
    """The one-screen summary: points, labels and churn rate per kind, runs, states at t."""
    from rich.table import Table

    table = Table(title=f"observations -> {paths.observations_table} (as of {s.as_of})")
    for col in ("kind", "points", "labelled", "churn rate", "with truth"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, k in s.by_kind.items():
        rate = "-" if k["labelled"] == 0 else f"{k['churn_rate']:.1%}"
        table.add_row(kind, f"{k['points']:,}", f"{k['labelled']:,}", rate, f"{k['with_truth']:,}")
    console.print(table)
    console.print(
        f"runs {s.runs:,} ({s.reactivations:,} after a win-back); "
        f"{s.churned_before_early_life:,} runs churned before day "
        f"{labels.early_life_days} (no early-life point; they still count in CRR). "
        f"At t: {', '.join(f'{k} {v:,}' for k, v in s.by_state.items())}. "
        f"Points are labelled only if t + {labels.horizon_days} + {labels.grace_days} days "
        f"<= the as-of date."
    )
