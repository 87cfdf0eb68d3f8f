"""Ingest: a business's raw export -> typed interim tables + quarantined rows + a manifest.

Everything runs inside one DuckDB connection (no Python per row). Per table:

1. Find `<table>.csv`, `<table>.csv.gz` or `<table>.parquet` in the raw folder; read its
   header, apply `rename[table]`, check the contract columns (a `ContractError` names the
   file and what is wrong). A background thread then hashes the raw bytes (md5) of every
   file, one after the other, while the tables are read.
2. Scan the file once with DuckDB (CSV: every column VARCHAR, explicit dialect, malformed
   lines kept aside with `store_rejects`; Parquet: every column CAST to VARCHAR) into a
   table s_<table> holding per row the typed values, the first failing *row-local* rule
   (scope "row") and the raw texts, these only when they are not exactly what DuckDB prints
   for the typed values (the usual case costs no string storage). Row ids of that table
   follow the file (preserve_insertion_order), which gives the line numbers.
3. Rules that need other rows or tables (as-of, customers, duplicates, overlaps) add rows to
   the table's quarantine; everything else is written typed and sorted to
   `interim/<table>.parquet`; the quarantined rows to `quarantine/<table>.parquet`.

Values: trimmed, and empty or blank = missing. Persian and Arabic-Indic digits become ASCII
in id, date, timestamp, integer and number columns (and the Arabic decimal separator a '.'
in numbers). Integers: `[+-]digits` (also `5.0`); numbers: decimal or exponent notation,
finite. Enums match case-insensitively and are stored lower-case. Each typed value is tried
first on the raw text as it is (strictly: the text DuckDB itself would print); only the rows
that fail are trimmed, translated and parsed in every accepted form, so an export in the
canonical form pays for no string work. customer_id: a Parquet customer_id typed as a
floating-point number is a ContractError (1.0 is not an id); otherwise if every non-empty customers id is an
integer (at most 18 digits) customer_id is BIGINT in every table (`007` = 7), else VARCHAR,
compared exactly (case-sensitive).

Outputs: interim tables hold the contract columns only, typed; customers sorted by
(customer_id, line), subscriptions by (customer_id, period_start, line), event tables by
(customer_id, event time, then their other columns): a total order (rows equal in every
column are duplicates), so the same input gives byte-identical Parquet. Quarantine files:
source_file, line, column ('' for a whole-row rule), rule, reason, then the raw text of
every contract column, sorted by line; written (with zero rows) for every table present.

Order of work: customers are read first (they decide `id_type`), then the other tables;
a required table with no rows stops the ingest (unless `config.allow_empty` names it; an
optional table present but empty is reported with rows_in 0); the as-of date is inferred
(if not given) from the event rows that passed the row rules, or checked (an as-of on or
before the export's first day, or more than `max_as_of_gap_days` after its latest event,
is a ContractError); then customers are finished (they are needed to judge every other
table), then the rest.

Rules: `records.contract.RULES` declares each rule once (id, priority, scope, meaning); a
quarantined row carries exactly one rule, the failing one with the smallest priority
(within one priority, columns in contract order). Rules of scope "row" are
judged while reading (`row_rules`); the others need other rows, other tables or the
as-of date (`table_rules`). Why this order: a value has to parse before it can be compared;
rows that cannot have happened yet (future_row) must not move the inferred as-of date; rows
outside the export window (after_as_of) are dropped before they are judged against
customers; duplicates are looked for only among rows that would otherwise be kept, so a
bad first copy never costs the good second one; the referral check needs the final set of
customers.

Modules, in the order a run uses them: `sources` (files, headers, renames, md5, the scan),
`values` (typing SQL), `row_rules`, `read` (file -> s_<table>), `table_rules`, `outputs`
(interim and quarantine Parquet, line numbers), `report`; `session` holds the connection
and the per-table state.

`line`: for CSV, the record number as DuckDB counts it: the header is line 1, the first
data record line 2, a blank line counts as a line (it is quarantined as malformed_row), and
a record whose quoted value spans several physical lines counts as one line (so after such
a record, `line` is smaller than the physical line number; without quoted line breaks it is
the physical line). Malformed lines keep the number DuckDB reports; the other rows are
numbered around them. For Parquet, `line` is the row index + 1.

Dates and times: timestamps are ISO `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]]` with an optional
offset (`Z`, `+03:30`, `+0330`, `+03`); one with an offset is converted to the business
time zone, a naive one is taken as already in it; all are stored naive. A date column
takes `YYYY-MM-DD` or a full timestamp (offsets converted, then the day kept). With
calendar='jalali' the date part of text values is Jalali (converted with jdatetime's
calendar, see records/calendar.py); natively typed Parquet DATE/TIMESTAMP columns are
Gregorian whatever the calendar. A timestamp without a time of day is bad_timestamp.

Blank lines: DuckDB skips them but counts them in the line numbers it reports, so a file
with a blank line inside is re-read from a copy where the blank line is a row of empty
values (quarantined as malformed_row): every line number stays exact. The md5 thread spots
them; trailing blank lines are ignored.

max_bad_share: a table whose quarantined share, not counting customer_quarantined (the
customers table's fault) and after_as_of (the as-of date's consequence: an --as-of in the
past is not a broken export), is above `max_bad_share` stops the ingest with a
ContractError naming the file, the share and the top rules: the export is broken, not the
rows. Counts always reconcile: rows_in = kept + quarantined = kept + sum(by_rule), checked
before anything is reported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from records.config import IngestConfig
from records.contract import TABLES
from records.ingest import outputs, table_rules
from records.ingest.errors import ContractError
from records.ingest.read import read_table
from records.ingest.report import IngestReport, TableReport, summary, table_report
from records.ingest.session import Session
from records.ingest.sources import open_all, start_hashers, stop_hashers

__all__ = ["ContractError", "IngestConfig", "IngestReport", "TableReport", "ingest"]


def ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    config: IngestConfig,
    *,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate and type the raw export; see the module docstring for the rules.

    `now` is the wall clock (aware, or naive = already in `config.timezone`); it dates future
    rows. Writes interim_dir/<table>.parquet and quarantine_dir/<table>.parquet for every
    table present. On any error it raises (ContractError for the export's faults) and leaves
    the two folders for the caller to discard.
    """
    raw_dir, interim_dir, quarantine_dir = Path(raw_dir), Path(interim_dir), Path(quarantine_dir)
    # DuckDB spills inside the output folder (same disk); the folder is gone before the caller
    # commits, and a killed run's is removed with the rest of its output folder
    tmp = Path(tempfile.mkdtemp(prefix=".ingest-", suffix=".tmp", dir=interim_dir))
    run = Session(
        raw_dir, interim_dir, quarantine_dir, config=config,
        now_local=_now_local(now, config.timezone), progress=progress or (lambda _msg: None),
        tmp=tmp,
    )
    try:
        run.sources = open_all(run.con, raw_dir, config.rename)
        start_hashers(run.sources)
        present = [name for name in TABLES if run.sources[name] is not None]
        for name in present:  # customers first: they decide id_type
            read_table(run, name)
            _check_has_rows(run, name)
        run.as_of, run.as_of_source = table_rules.choose_as_of(run)
        for name in present:
            if name == "customers":
                table_rules.judge_customers(run)
            else:
                table_rules.judge_linked(run, name)
            _finish(run, name)
    finally:
        stop_hashers(run.sources)
        with contextlib.suppress(Exception):
            run.con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    tables = {}
    for name in TABLES:
        if run.sources[name] is None:
            tables[name] = TableReport(name, None, 0, 0, 0, {}, [], None)
        else:
            tables[name] = run.reports[name]
    return IngestReport(
        as_of=run.as_of, as_of_source=run.as_of_source, timezone=config.timezone,
        calendar=config.calendar, id_type=run.id_type, tables=tables,
    )


def _check_has_rows(run: Session, name: str) -> None:
    """A required table whose file has no rows is a broken export, unless allowed."""
    src = run.sources[name]
    assert src is not None
    if src.table.optional or name in run.config.allow_empty or run.rows_read(name):
        return
    raise ContractError(
        f"{src.file}: table '{name}' has no rows (the file holds only its header); it is "
        f"required ({src.table.meaning}). Export its rows, or, if the business really has "
        f"none, allow it in params.yaml with `data.allow_empty: [{name}]`"
    )


def _finish(run: Session, name: str) -> None:
    """Write the kept rows and the quarantine of a judged table, then report it."""
    src = run.sources[name]
    assert src is not None
    exprs, order, dedup = outputs.sort_order(name, table_rules.id_expr(run))
    kept = outputs.write_kept(run, name, exprs, order, dedup)
    rows = run.one(f"SELECT count(*) FROM s_{name}")
    if dedup and kept < rows - run.one(f"SELECT count(rid) FROM q_{name}"):
        table_rules.find_duplicates(run, name)  # duplicate_row, exactly
    outputs.write_quarantine(run, name, src)
    by_rule = dict(run.q(f"SELECT rule, count(*) FROM q_{name} GROUP BY rule ORDER BY rule"))
    report = table_report(
        name, src.file, rows_in=rows + len(run.rejects.get(name, [])), kept=kept,
        by_rule=by_rule, extra=src.extra, md5=run.md5[name],
        max_bad_share=run.config.max_bad_share,
    )
    run.reports[name] = report
    run.progress(summary(report))
    run.drop(name)


def _now_local(now: dt.datetime | None, tz: str) -> dt.datetime:
    zone = ZoneInfo(tz)
    if now is None:
        now = dt.datetime.now(zone)
    if now.tzinfo is not None:
        now = now.astimezone(zone).replace(tzinfo=None)
    return now
