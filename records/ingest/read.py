"""Reading one table's file into s_<table>: one DuckDB scan that types every value (values.py)
and evaluates the row-local rules (row_rules.py), while a thread hashes the raw bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb

from records.ingest.errors import ContractError
from records.ingest.row_rules import code_sql, local_rules
from records.ingest.session import Session
from records.ingest.sources import Source, line_endings, rewrite_blank_lines, scan_sql
from records.ingest.sql import clip, describe, lit
from records.ingest.values import ID_INT_RE, typed_sql


def read_table(run: Session, name: str) -> None:
    src = run.sources[name]
    assert src is not None
    run.progress(f"{name}: reading {src.file}")
    _read(run, src, src.path)
    assert src.hasher is not None  # started by sources.start_hashers
    md5, interior_blank = src.hasher.result()
    run.md5[name] = md5
    if interior_blank:
        run.progress(f"{name}: {src.file} has blank lines: reading them as empty rows")
        copy = run.tmp / f"{name}.csv"
        rewrite_blank_lines(src.path, len(src.names), copy)
        _read(run, src, copy)
        copy.unlink()
    if name == "customers":
        # integer ids only if there are ids and every one looks like an integer
        all_int = run.one(f"SELECT bool_and(regexp_full_match(v_customer_id, "
                           f"{lit(ID_INT_RE)})) FROM s_{name}")
        run.id_type = "integer" if all_int else "string"


def _read(run: Session, src: Source, path: Path) -> None:
    name = src.table.name
    for obj in (f"s_{name}", f"rej_{name}", f"rejscan_{name}"):
        run.con.execute(f"DROP TABLE IF EXISTS {obj}")
    rules = local_rules(src.table, run.now_local)
    run.codes[name] = [(rule, col) for _, rule, col in rules]
    raws = ", ".join(f"r_{c.name}" for c in src.table.columns)
    typed = ", ".join(f"v_{c.name}" for c in src.table.columns)
    try:
        run.con.execute(
            f"CREATE TABLE s_{name} AS SELECT {typed}, "
            f"{code_sql(rules)} AS code, "
            f"CASE WHEN _keep_raw THEN [{raws}] END AS raw "
            f"FROM ({typed_sql(run.sql, src, scan_sql(src, path), run.id_type)})"
        )
    except duckdb.Error as err:
        hint = ""
        if src.kind == "csv":
            crlf, lf = line_endings(src.path)
            if crlf and lf:
                hint = (f". It mixes line endings (\\r\\n on {crlf:,} lines, \\n on {lf:,}): "
                        "convert it to one kind (e.g. `dos2unix`) or export it again")
        raise ContractError(f"{src.file}: cannot read the file: {describe(err)}{hint}") from None
    run.rejects[name] = []
    if src.kind != "csv":
        return
    # one error per line: the first kind, and of that kind the last found (a line with two
    # surplus fields is reported once, with the whole count)
    order = "{'t': error_type, 'p': -CAST(byte_position AS HUGEINT)}"
    rows = run.q(
        f"SELECT line, min(error_type), arg_min(error_message, {order}), "
        f"arg_min(csv_line, {order}) FROM rej_{name} GROUP BY line ORDER BY line"
    )
    for line, etype, message, _ in rows:
        if "ENCODING" in etype.upper() or "UNICODE" in etype.upper():
            raise ContractError(f"{src.file}: not UTF-8 (line {line}: {message})")
    if rows:
        _unclosed_quote(run, src, path, rows)
    run.rejects[name] = [
        (int(line), f"{message} (line {clip(text)!r})") for line, _, message, text in rows
    ]


def _unclosed_quote(run: Session, src: Source, path: Path, rows: list[tuple]) -> None:
    """Stop if the file's last record opens a quote that never closes and so swallowed the
    lines after it: they would be neither kept nor quarantined. A quote closed too late
    (`"4<newline>5"x,6,7`) or one left open on the very last line is one bad record,
    quarantined as such."""
    line, etype, _, text = rows[-1]
    name = src.table.name
    if "UNQUOTED" not in etype.upper() or text.count('"') % 2 == 0:  # `""` counts two
        return
    if line - 1 != run.one(f"SELECT count(*) FROM s_{name}") + len(rows):
        return  # not the last record
    # DuckDB's copy of the record may be cut short: count the lines after it in the file
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    at = data.rfind(text.encode()[:200])
    after = len(data[at:].rstrip(b"\r\n").split(b"\n")) - 1 if at >= 0 else 0
    if after:
        raise ContractError(
            f"{src.file}: line {line} opens a quote (\") that never closes, so the rest of "
            f"the file ({after:,} line(s) after it) was read as part of one value and cannot "
            "be counted as rows: close the quote (a quote inside a value is written twice, "
            "\"\") and export the file again")
