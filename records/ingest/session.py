"""The state of one ingest: a DuckDB connection, per-table state, and the SQL pieces every
phase shares. Tables per contract table `<t>`, created and dropped as the run goes:

    s_<t>     the file as read: typed values v_*, the first failing row-local rule (`code`,
              an index into `codes[t]`) and the raw texts when they differ from the values
    q_<t>     the quarantined rows so far (rid = row id in s_<t>, rule, col, reason, raws)
    cust      one row per customer_id: kept?, signup day (what other tables are judged by)
    a_, k_, p_, lmap_<t>   narrow helper tables of the table rules and the line mapping
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from records import calendar as cal
from records.config import IngestConfig
from records.contract import TABLES
from records.ingest.report import TableReport
from records.ingest.sources import Source
from records.ingest.sql import WS, lit
from records.ingest.values import Sql, value_text

HELPER_PREFIXES = ("s", "q", "p", "k", "a", "lmap")


class Session:
    """One ingest: a DuckDB connection and the per-table state."""

    def __init__(
        self,
        raw_dir: Path,
        interim_dir: Path,
        quarantine_dir: Path,
        *,
        config: IngestConfig,
        now_local: dt.datetime,
        progress: Callable[[str], None],
        tmp: Path,
    ):
        self.raw_dir, self.interim_dir, self.quarantine_dir = raw_dir, interim_dir, quarantine_dir
        self.config = config
        self.tz, self.calendar = config.timezone, config.calendar
        self.now_local, self.today = now_local, now_local.date()
        self.progress, self.tmp = progress, tmp
        self.sql = Sql(config.timezone, config.calendar)
        self.con = duckdb.connect(
            config={
                "preserve_insertion_order": True,  # row ids = file order (the line numbers)
                "temp_directory": str(tmp / "duckdb"),
            }
        )
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(f"SET TimeZone = {lit(config.timezone)}")
        if config.calendar == "jalali":
            self.con.execute(cal.jalali_macros_sql())
        self.con.execute("CREATE MACRO quote_value(x) AS concat(chr(39), x, chr(39))")
        self.sources: dict[str, Source | None] = {}
        self.rejects: dict[str, list[tuple[int, str]]] = {}
        self.codes: dict[str, list[tuple[str, str]]] = {}
        self.md5: dict[str, str] = {}
        self.reports: dict[str, TableReport] = {}
        self.id_type = "string"
        self.as_of = dt.date.min
        self.as_of_source = ""

    def cand(self, name: str) -> str:
        """The rows of s_<name> still in play: no row-local rule, not quarantined yet (SQL
        text, so each use sees q_<name> as it is then)."""
        return (f"SELECT s.rowid AS rid, s.* FROM s_{name} s ANTI JOIN q_{name} q "
                f"ON s.rowid = q.rid WHERE s.code IS NULL")

    def q(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def one(self, sql: str) -> Any:
        return self.q(sql)[0][0]

    def raw(self, name: str, col: str) -> str:
        """SQL for the original raw text of `col` (columns of s_<name> in scope).

        s_<name> keeps the raw texts of a row (the list `raw`) only when one of them is not
        exactly its value printed back (values.value_text); otherwise they are printed back.
        """
        i = TABLES[name].column_names.index(col) + 1
        text = value_text(TABLES[name].column(col).kind, f"v_{col}")
        return f"CASE WHEN raw IS NULL THEN {text} ELSE raw[{i}] END"

    def rv(self, name: str, alias: str = "") -> str:
        """The raw list and the v_* columns of s_<name> (for the inner queries of `insert`)."""
        a = f"{alias}." if alias else ""
        return ", ".join([f"{a}raw"] + [f"{a}v_{c.name}" for c in TABLES[name].columns])

    def raws(self, name: str) -> str:
        return ", ".join(self.raw(name, c.name) for c in TABLES[name].columns)

    def shown(self, name: str, col: str) -> str:
        """The raw text, trimmed and quoted, for reasons."""
        return f"quote_value(trim({self.raw(name, col)}, {lit(WS)}))"

    def insert(self, name: str, inner: str) -> None:
        """Add quarantined rows: `inner` yields rid, rule, col, reason, ref_rid, r_*, v_*."""
        self.con.execute(
            f"INSERT INTO q_{name} SELECT rid, NULL, rule, col, reason, ref_rid, "
            f"{self.raws(name)} FROM ({inner})"
        )

    def drop(self, name: str) -> None:
        """Drop every work table of `name` (its outputs and report are done)."""
        for prefix in HELPER_PREFIXES:
            self.con.execute(f"DROP TABLE IF EXISTS {prefix}_{name}")

    def rows_read(self, name: str) -> int:
        """Rows DuckDB read (s_<name>) plus the CSV reader's malformed lines."""
        return self.one(f"SELECT count(*) FROM s_{name}") + len(self.rejects.get(name, []))
