"""A small pandas reading of the simulated export, used only by the simulator's tests.

It applies definitions.md directly (churn dates, derived lapses, half-open label window,
censoring) so the tests can compare realised churn with the simulator's truth.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd


def export_as_of(world: Path) -> pd.Timestamp:
    return pd.Timestamp(json.loads((world / "truth" / "world.json").read_text())["as_of"])


def churn_dates(subs: pd.DataFrame, as_of: pd.Timestamp, grace_days: int) -> pd.DataFrame:
    subs = subs.sort_values(["customer_id", "period_start"])
    following = subs.groupby("customer_id")["period_start"].shift(-1)
    lapsed = (
        subs["outcome"].isin(["renewed", "open"])
        & following.isna()
        & (subs["period_end"] + pd.Timedelta(days=grace_days) <= as_of)
    )
    churned = subs["outcome"].isin(["cancelled", "lapsed"]) | lapsed
    return subs.loc[churned, ["customer_id", "period_end"]].rename(columns={"period_end": "churn"})


def labelled_truth(world: Path, horizon_days: int, grace_days: int) -> pd.DataFrame:
    """Truth points whose outcome is known, with their label."""
    as_of = export_as_of(world)
    subs = pd.read_csv(world / "export" / "subscriptions.csv",
                       parse_dates=["period_start", "period_end"])
    truth = pd.read_parquet(world / "truth" / "truth.parquet")
    truth["t"] = pd.to_datetime(truth["t"]).astype("datetime64[us]")
    horizon = pd.Timedelta(days=horizon_days)
    points = truth[truth["t"] + horizon + pd.Timedelta(days=grace_days) <= as_of]
    hits = points.merge(churn_dates(subs, as_of, grace_days), on="customer_id")
    hits = hits[(hits["churn"] >= hits["t"]) & (hits["churn"] < hits["t"] + horizon)]
    hit_keys = set(zip(hits["customer_id"], hits["t"], strict=True))
    points = points.copy()
    points["label"] = [
        (c, t) in hit_keys for c, t in zip(points["customer_id"], points["t"], strict=True)
    ]
    return points


def window_counts(events: pd.DataFrame, ts: str, points: pd.DataFrame, lo_days: int,
                  hi_days: int = 0) -> pd.Series:
    """Events per point in [t - lo_days, t - hi_days)."""
    m = points[["customer_id", "t"]].merge(events[["customer_id", ts]], on="customer_id")
    inside = (m[ts] >= m["t"] - dt.timedelta(days=lo_days)) & (
        m[ts] < m["t"] - dt.timedelta(days=hi_days))
    counts = m[inside].groupby(["customer_id", "t"]).size()
    idx = pd.MultiIndex.from_frame(points[["customer_id", "t"]])
    return counts.reindex(idx, fill_value=0).to_numpy()
