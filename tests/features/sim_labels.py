"""A small pandas reading of the simulated export, used only by the simulator's tests.

It labels the simulator's truth points with the pipeline's own runs and labels (which have
their own tests), so the simulator's tests can compare realised churn with its truth.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from features import observations


def export_as_of(world: Path) -> pd.Timestamp:
    return pd.Timestamp(json.loads((world / "truth" / "world.json").read_text())["as_of"])


def labelled_truth(world: Path, horizon_days: int, grace_days: int) -> pd.DataFrame:
    """Truth points whose outcome is known, labelled by the pipeline's own definitions."""
    as_of = export_as_of(world)
    ex = world / "export"
    customers = pd.read_csv(ex / "customers.csv", parse_dates=["signup_date"])
    subs = pd.read_csv(ex / "subscriptions.csv", parse_dates=["period_start", "period_end"])
    truth = pd.read_parquet(world / "truth" / "truth.parquet")
    truth["t"] = pd.to_datetime(truth["t"]).astype("datetime64[us]")
    runs = observations.runs(customers, subs, view=as_of.date(), grace_days=grace_days)
    points = truth.merge(runs[["customer_id", "run", "run_start"]].assign(_r=1), how="left",
                         on="customer_id")
    # each truth point belongs to the run the pipeline gives it: the latest at risk at t
    at_risk = (points["run_start"] < points["t"]) & points["run"].notna()
    points = points[at_risk].merge(runs[["customer_id", "run", "last_at_risk"]],
                                   on=["customer_id", "run"])
    points = points[points["last_at_risk"].isna() | (points["last_at_risk"] >= points["t"])]
    points = points.sort_values(["customer_id", "t", "run"]).drop_duplicates(
        ["customer_id", "t"], keep="last")
    points["label"] = observations.label(points, runs, as_of=as_of.date(),
                                         horizon_days=horizon_days, grace_days=grace_days)
    return points[points["label"].notna()].astype({"label": "int64"})


def window_counts(events: pd.DataFrame, ts: str, points: pd.DataFrame, lo_days: int,
                  hi_days: int = 0) -> pd.Series:
    """Events per point in [t - lo_days, t - hi_days)."""
    m = points[["customer_id", "t"]].merge(events[["customer_id", ts]], on="customer_id")
    inside = (m[ts] >= m["t"] - dt.timedelta(days=lo_days)) & (
        m[ts] < m["t"] - dt.timedelta(days=hi_days))
    counts = m[inside].groupby(["customer_id", "t"]).size()
    idx = pd.MultiIndex.from_frame(points[["customer_id", "t"]])
    return counts.reindex(idx, fill_value=0).to_numpy()
