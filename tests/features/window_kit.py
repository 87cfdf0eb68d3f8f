"""Compute window features on small hand-made tables, through the real DuckDB path."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd

from features import windows

SPEC = windows.Spec(window_days=90, recent_days=30, horizon_days=60)
COLUMNS = {
    "customers": {"customer_id": "str", "signup_date": "datetime64[s]", "channel": "str",
                  "referral_code": "str", "referred_by": "str"},
    "subscriptions": {"customer_id": "str", "period_start": "datetime64[s]",
                      "period_end": "datetime64[s]", "plan": "str", "fee": "float64",
                      "outcome": "str"},
    "usage": {"customer_id": "str", "ts": "datetime64[s]", "messages": "int64"},
    "charges": {"customer_id": "str", "ts": "datetime64[s]", "amount": "float64"},
    "tickets": {"customer_id": "str", "opened_at": "datetime64[s]", "topic": "str",
                "resolved_at": "datetime64[s]"},
    "nps": {"customer_id": "str", "ts": "datetime64[s]", "score": "int64"},
}
DATE_COLUMNS = {"signup_date", "period_start", "period_end"}


def frame(table: str, rows: list[tuple]) -> pd.DataFrame:
    cols = COLUMNS[table]
    df = pd.DataFrame(rows, columns=list(cols)) if rows else pd.DataFrame(columns=list(cols))
    return df.astype(cols)


def compute(folder: Path, points: list[tuple], **tables: list[tuple]) -> pd.DataFrame:
    """points: (customer_id, t, run, run_start); tables: rows in COLUMNS order."""
    folder.mkdir(parents=True, exist_ok=True)
    con = ibis.duckdb.connect()
    src = {}
    for name in COLUMNS:
        df = frame(name, tables.get(name, []))
        for c in DATE_COLUMNS & set(df.columns):
            df[c] = df[c].dt.date
        path = folder / f"{name}.parquet"
        df.to_parquet(path)
        src[name] = con.read_parquet(str(path), table_name=name)
    pts = pd.DataFrame(points, columns=["customer_id", "t", "run", "run_start"])
    pts["t"] = pd.to_datetime(pts["t"]).dt.date
    pts["run_start"] = pd.to_datetime(pts["run_start"]).dt.date
    pts.to_parquet(folder / "points.parquet")
    p = con.read_parquet(str(folder / "points.parquet"), table_name="points")
    vocab = windows.Vocab(plans=("basic", "pro"), channels=("ads", "organic"))
    return con.execute(windows.build(p, src, vocab=vocab, spec=SPEC)).set_index(
        ["customer_id", "t"])
