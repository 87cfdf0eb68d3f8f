"""The export as it would have been taken on day D, made from a later one.

The business's export has no decision or payment dates, so one rule says when each outcome
becomes known (definitions.md): `cancelled` on its period_end, `lapsed` on
period_end + grace_days, `renewed` when the next period starts. An export taken on day D holds

- customers who signed up before D, and every event dated before D (timestamps before D's
  first second, in the business time zone the interim tables are stored in);
- tickets opened before D, with `resolved_at` only if it is before D;
- subscription periods that started before D, each outcome only if it was known before D,
  else `open`.

Features and points at any t <= D are then the same from the cut as from the full export
(tests/features/test_boundary.py), which is what lets a backtest train on the past honestly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from records.contract import TABLES
from records.ingest.sql import lit, qi


def _filter(table: str, day: str, grace_days: int) -> str:
    """SELECT of one interim table as of `day` (a DATE literal), contract columns in order."""
    cols = [c.name for c in TABLES[table].columns]
    if table == "customers":
        return f"SELECT {', '.join(map(qi, cols))} FROM src WHERE signup_date < {day}"
    if table == "subscriptions":
        outcome = (
            f"CASE WHEN outcome = 'cancelled' AND period_end < {day} THEN 'cancelled' "
            f"WHEN outcome = 'lapsed' AND period_end + INTERVAL {int(grace_days)} DAY < {day} "
            f"THEN 'lapsed' "
            f"WHEN outcome = 'renewed' AND next_start < {day} THEN 'renewed' ELSE 'open' END"
        )
        select = ", ".join(f"{outcome} AS outcome" if c == "outcome" else qi(c) for c in cols)
        return (f"SELECT {select} FROM (SELECT *, lead(period_start) OVER (PARTITION BY "
                f"customer_id ORDER BY period_start) AS next_start FROM src) "
                f"WHERE period_start < {day}")
    if table == "tickets":
        select = ", ".join(
            f"CASE WHEN resolved_at < {day} THEN resolved_at END AS resolved_at"
            if c == "resolved_at" else qi(c) for c in cols)
        return f"SELECT {select} FROM src WHERE opened_at < {day}"
    ts = TABLES[table].event_ts
    return f"SELECT {', '.join(map(qi, cols))} FROM src WHERE {qi(ts)} < {day}"


def _order(table: str) -> list[str]:
    """The interim tables' total order (records.ingest.outputs): ids, then dates, then (event
    tables) every other column."""
    t = TABLES[table]
    if table == "customers":
        return ["customer_id"]
    if table == "subscriptions":
        return ["customer_id", "period_start"]
    lead = ["customer_id", t.event_ts]
    return lead + [c.name for c in t.columns if c.name not in lead]


def cut(interim_dir: Path, out_dir: Path, day: dt.date, grace_days: int,
        tables: tuple[str, ...]) -> dict[str, int]:
    """Write each of `tables` from `interim_dir` into `out_dir` as an export taken on `day`
    would hold it, in the interim tables' own order; returns the rows kept per table."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # interim timestamps are naive business time
        rows = {}
        d = f"DATE {lit(day.isoformat())}"
        for name in tables:
            src = Path(interim_dir) / f"{name}.parquet"
            con.execute(f"CREATE OR REPLACE VIEW src AS SELECT * FROM read_parquet({lit(src)})")
            order = ", ".join(qi(c) for c in _order(name))
            out = Path(out_dir) / f"{name}.parquet"
            rows[name] = int(con.execute(
                f"COPY ({_filter(name, d, grace_days)} ORDER BY {order}) TO {lit(out)} "
                f"(FORMAT parquet, COMPRESSION snappy)").fetchone()[0])
        return rows
    finally:
        con.close()
