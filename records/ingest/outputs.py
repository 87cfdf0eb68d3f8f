"""What ingest writes: the kept rows, typed and totally ordered, to interim/<table>.parquet;
the quarantined rows, with their file line numbers, to quarantine/<table>.parquet."""

from __future__ import annotations

from records.contract import TABLES
from records.ingest.session import Session
from records.ingest.sources import Source
from records.ingest.sql import lit, qi


def sort_order(name: str, id_expr: str) -> tuple[dict[str, str], list[str], bool]:
    """(column expressions, leading sort columns, dedup) of `write_kept` for a table."""
    t = TABLES[name]
    if name == "customers":
        return {"customer_id": id_expr}, ["customer_id"], False
    if t.event_ts:
        return {}, ["customer_id", t.event_ts], True
    return {}, ["customer_id", "period_start"], False


def write_kept(run: Session, name: str, exprs: dict[str, str], order: list[str], dedup: bool) -> int:
    """COPY the kept rows, sorted, to interim/<table>.parquet; returns their count.

    The sort is total: by `order`, then (dedup) every other column or (else) the line.
    With dedup, a row equal in every column to the row before it is an exact copy and is
    not written (which of the equal rows is written does not change a byte).
    """
    t = TABLES[name]
    cols = [c.name for c in t.columns]
    select = ", ".join(f"{exprs.get(c, f'v_{c}')} AS {qi(c)}" for c in cols)
    if dedup:
        keys = [qi(c) for c in order + [c for c in cols if c not in order]]
    else:
        keys = [qi(c) for c in order] + ["_rid"]
    inner = f"SELECT {select}, rid AS _rid FROM ({run.cand(name)}) ORDER BY {', '.join(keys)}"
    if dedup:
        lags = ", ".join(f"lag({qi(c)}) OVER () AS {qi('_p_' + c)}" for c in cols)
        same = " AND ".join(f"{qi(c)} IS NOT DISTINCT FROM {qi('_p_' + c)}" for c in cols)
        inner = (
            f"SELECT * FROM (SELECT *, row_number() OVER () AS _n, {lags} FROM ({inner})) "
            f"WHERE NOT (_n > 1 AND {same})"
        )
    out = run.interim_dir / f"{name}.parquet"
    col_list = ", ".join(qi(c) for c in cols)
    return int(
        run.one(
            f"COPY (SELECT {col_list} FROM ({inner})) TO {lit(out)} "
            f"(FORMAT parquet, COMPRESSION snappy)"
        )
    )


def line_sql(run: Session, name: str, kind: str) -> tuple[str, str, str]:
    """(joins, line, ref line): row ids -> line numbers (see the `records.ingest` docstring)."""
    if kind == "parquet":
        return "", "q.rid + 1", "q.ref_rid + 1"
    rejects = run.rejects.get(name, [])
    if not rejects:
        return "", "q.rid + 2", "q.ref_rid + 2"
    # accepted row k (0-based) comes after the j rejected lines with line_i - 1 - i <= k
    values = ", ".join(f"({line - 1 - i}, {i})" for i, (line, _) in enumerate(rejects, 1))
    run.con.execute(
        f"CREATE OR REPLACE TEMP TABLE lmap_{name} AS SELECT t, max(j) AS j "
        f"FROM (VALUES {values}) v(t, j) GROUP BY t"
    )
    joins = (
        f" ASOF LEFT JOIN lmap_{name} m1 ON q.rid >= m1.t"
        f" ASOF LEFT JOIN lmap_{name} m2 ON q.ref_rid >= m2.t"
    )
    return joins, "q.rid + 2 + coalesce(m1.j, 0)", "q.ref_rid + 2 + coalesce(m2.j, 0)"


def write_quarantine(run: Session, name: str, src: Source) -> None:
    joins, line, ref = line_sql(run, name, src.kind)
    raws = ", ".join(f"q.raw_{c.name} AS {qi(c.name)}" for c in src.table.columns)
    out = run.quarantine_dir / f"{name}.parquet"
    run.con.execute(
        f"COPY (SELECT {lit(src.file)} AS source_file, "
        f"CAST(coalesce(q.line, {line}) AS BIGINT) AS line, q.col AS \"column\", q.rule, "
        f"replace(q.reason, '{{ref}}', coalesce(CAST({ref} AS VARCHAR), '?')) AS reason, "
        f"{raws} FROM q_{name} q{joins} ORDER BY 2, 4) "
        f"TO {lit(out)} (FORMAT parquet, COMPRESSION snappy)"
    )
