"""Ingest: a business's raw export -> typed interim tables + quarantined rows + a manifest.

Everything runs inside one DuckDB connection (no Python per row). Per table:

1. Find `<table>.csv`, `<table>.csv.gz` or `<table>.parquet` in the raw folder; read its
   header, apply `rename[table]`, check the contract columns (a `ContractError` names the
   file and what is wrong). A background thread hashes the raw bytes (md5) meanwhile.
2. Scan the file once with DuckDB (CSV: every column VARCHAR, explicit dialect, malformed
   lines kept aside with `store_rejects`; Parquet: every column CAST to VARCHAR) into a
   table s_<table> holding per row the typed values, the first failing *row-local* rule
   (0-7 below) and the raw texts, these only when they are not exactly what DuckDB prints
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
canonical form pays for no string work. customer_id: if every non-empty customers id is an
integer (at most 18 digits) customer_id is BIGINT in every table (`007` = 7), else VARCHAR,
compared exactly (case-sensitive).

Outputs: interim tables hold the contract columns only, typed; customers sorted by
(customer_id, line), subscriptions by (customer_id, period_start, line), event tables by
(customer_id, event time, then their other columns): a total order (rows equal in every
column are duplicates), so the same input gives byte-identical Parquet. Quarantine files:
source_file, line, column ('' for a whole-row rule), rule, reason, then the raw text of
every contract column, sorted by line; written (with zero rows) for every table present.

Order of work: customers are read first (they decide `id_type`), then the other tables;
the as-of date is inferred (if not given) from the event rows that passed steps 1-7 below;
then customers are finished (they are needed to judge every other table), then the rest.

Rule priority: a quarantined row carries exactly one rule, the first that fails, in this
order (within one rule, columns in contract order):

 0. malformed_row          the CSV line could not be split into the header's columns (too
                           many / too few fields, unterminated quote), or every value of the
                           line is empty (a blank line inside the file).
 1. missing_value          a required value is empty.
 2. bad_date, bad_timestamp, bad_integer, bad_number
                           a value that does not parse (contract column order decides
                           between columns: a row with a bad ts and a bad amount is
                           bad_timestamp on ts).
 3. bad_enum
 4. out_of_range           contract min/max (min_exclusive).
 5. period_order           period_end <= period_start.
 6. resolved_before_opened resolved_at < opened_at.
 7. future_row             signup_date / period_start later than today, or an event
                           timestamp (or resolved_at) later than `now`, in the business zone.
 --- rows passing 0-7 define the default as-of date ---
 8. after_as_of            event ts >= as-of day start; period_start >= as-of;
                           signup_date >= as-of.
 9. unknown_customer       customer_id matches no customers row at all (in integer mode,
                           also an id that is not an integer).
10. customer_quarantined   the customer's customers rows are all quarantined.
11. before_signup          event ts or period_start before the customer's signup_date.
12. duplicate_row          (event tables) every contract column equal, as typed values, to
                           an earlier row that passed 0-11: the first is kept.
13. duplicate_key          (customers: customer_id, then referral_code; subscriptions:
                           customer_id + period_start) a key already held by an earlier row
                           (file order) that passed 0-12: the first is kept.
14. period_overlap         (subscriptions) a period starting before the end of an earlier
                           kept period of the same customer; periods are walked in
                           (period_start, line) order, so a quarantined period never blocks
                           a later one.
15. unknown_referrer       (customers) referred_by is not the referral_code of a kept
                           customer. Applied last and transitively: a customer referred by a
                           quarantined customer is quarantined too, so every kept referred_by
                           resolves to a kept customer.

Why this order: a value has to parse before it can be compared (1-4 before 5-8); rows that
cannot have happened yet (7) must not move the inferred as-of date; rows outside the export
window (8) are dropped before they are judged against customers; duplicates (12-14) are
looked for only among rows that would otherwise be kept, so a bad first copy never costs
the good second one; the referral check needs the final set of customers.

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
import csv
import datetime as dt
import gzip
import hashlib
import mmap
import os
import re
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from records import calendar as cal
from records.contract import EVENT_TABLES, RULES, TABLES, Table

EXTENSIONS = (".csv", ".csv.gz", ".parquet")
CALENDARS = ("gregorian", "jalali")
EXCLUDED_FROM_SHARE = ("customer_quarantined", "after_as_of")
_CHUNK = 1 << 23

# RE2 patterns, always matched whole (regexp_full_match).
WS = " \t\r\n\u00a0\ufeff"
INT_RE = r"[+-]?[0-9]+(\.0*)?"
ID_INT_RE = r"[+-]?[0-9]{1,18}"
NUM_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"[ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
TS_NAIVE_RE = DATE_RE + _TIME
# the fast path: exactly what DuckDB prints for a whole-second TIMESTAMP
TS_CANON_RE = DATE_RE + r" ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
TS_OFFSET_RE = DATE_RE + _TIME + r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"

TS_FORMAT = "YYYY-MM-DD HH:MM[:SS[.ffffff]][offset]"
KIND_RULE = {
    "date": "bad_date",
    "timestamp": "bad_timestamp",
    "integer": "bad_integer",
    "number": "bad_number",
}


class ContractError(Exception):
    """The export as a whole breaks the contract (a file, a column, the share of bad rows)."""


@dataclass
class TableReport:
    table: str
    source: str | None  # file name relative to raw_dir, None if optional and absent
    rows_in: int
    kept: int
    quarantined: int
    by_rule: dict[str, int]  # rule id -> count, every quarantined row counted exactly once
    extra_columns: list[str]  # ignored columns (after renames)
    md5: str | None  # md5 of the raw file bytes


@dataclass
class IngestReport:
    as_of: dt.date
    as_of_source: str  # "flag" or "latest event + 1 day"
    timezone: str
    calendar: str
    id_type: str  # "integer" or "string"
    tables: dict[str, TableReport] = field(default_factory=dict)

    def to_manifest(self, raw_dir: str) -> dict:
        """JSON-ready and reproducible: no wall-clock time, run id or temp path in it."""
        return {
            "raw_dir": str(raw_dir),
            "as_of": self.as_of.isoformat(),
            "as_of_source": self.as_of_source,
            "timezone": self.timezone,
            "calendar": self.calendar,
            "id_type": self.id_type,
            "tables": {
                name: {
                    "file": t.source,
                    "md5": t.md5,
                    "rows_in": t.rows_in,
                    "kept": t.kept,
                    "quarantined": t.quarantined,
                    "by_rule": {rule: t.by_rule[rule] for rule in sorted(t.by_rule)},
                    "extra_columns": list(t.extra_columns),
                }
                for name, t in self.tables.items()
            },
        }


# --------------------------------------------------------------------------- SQL helpers


def qi(name: str) -> str:
    """Quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _num(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- raw files


@dataclass
class _Source:
    table: Table
    path: Path
    kind: str  # "csv" or "parquet"
    header: list[str]  # file column names as in the file
    names: list[str]  # file column names after renames, in file order
    mapping: dict[str, int]  # contract column -> position in the file
    extra: list[str]
    native_types: dict[str, str] = field(default_factory=dict)  # parquet: contract col -> type
    hasher: _Hasher | None = None

    @property
    def file(self) -> str:
        return self.path.name


def _find_file(raw_dir: Path, table: Table) -> Path | None:
    found = [raw_dir / f"{table.name}{ext}" for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ContractError(
            f"{raw_dir}: two files for table '{table.name}' ({names}); keep exactly one"
        )
    if not found:
        if table.optional:
            return None
        expected = " or ".join(f"{table.name}{ext}" for ext in EXTENSIONS)
        raise ContractError(
            f"{raw_dir}: required file {expected} is missing (table '{table.name}': "
            f"{table.meaning})"
        )
    return found[0]


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            first = f.readline(1 << 20)
    except (OSError, EOFError, zlib.error) as err:
        raise ContractError(f"{path.name}: cannot read the file: {err}") from None
    if not first:
        raise ContractError(f"{path.name}: the file is empty (expected a header line)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContractError(f"{path.name}: not UTF-8 (line 1, the header)") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ContractError(f"{path.name}: line 1 is empty (expected a header line)")
    return [name.strip() for name in next(csv.reader([text]))]


def _parquet_header(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(path)})").fetchall()
    except duckdb.Error as err:
        raise ContractError(f"{path.name}: cannot read the Parquet file: {_first(err)}") from None
    return [(r[0], r[1]) for r in rows]


def _first(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _open_source(
    con: duckdb.DuckDBPyConnection, raw_dir: Path, table: Table, rename: dict[str, str]
) -> _Source | None:
    path = _find_file(raw_dir, table)
    if path is None:
        return None
    kind = "parquet" if path.name.endswith(".parquet") else "csv"
    if kind == "csv":
        header = _csv_header(path)
        types: dict[str, str] = {}
    else:
        described = _parquet_header(con, path)
        header = [n for n, _ in described]
        types = dict(described)
    names = [rename.get(n, n) for n in header]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen and n:
            raise ContractError(
                f"{path.name}: column '{n}' appears twice (positions {seen[n] + 1} and {i + 1})"
            )
        seen[n] = i
    for col in table.columns:
        if col.required and col.name not in seen:
            found = ", ".join(repr(n) for n in names)
            msg = f"{path.name}: required column '{col.name}' is missing; columns found: {found}"
            if len(names) == 1 and (";" in header[0] or "\t" in header[0]):
                msg += " (a single column containing ';' or a tab: the delimiter looks wrong, "
                msg += "the contract expects ',')"
            if rename:
                msg += f" (after renames {rename})"
            raise ContractError(msg)
    mapping = {c.name: seen[c.name] for c in table.columns if c.name in seen}
    extra = [n for n in names if n not in mapping]
    native = {c: types[header[i]] for c, i in mapping.items()} if types else {}
    return _Source(table, path, kind, header, names, mapping, extra, native)


class _Hasher(threading.Thread):
    """md5 of the raw bytes and, for CSV, whether a blank line sits inside the file.

    Runs beside DuckDB's scan (hashlib and zlib release the GIL on large buffers).
    """

    def __init__(self, path: Path, check_blank: bool):
        super().__init__(daemon=True)
        self.path, self.check_blank = path, check_blank
        self.md5: str | None = None
        self.interior_blank = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # reported by the caller
            self.error = err

    def _run(self) -> None:
        if self.path.name.endswith(".gz"):
            self._run_gz()
            return
        h = hashlib.md5()
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                self.md5 = h.hexdigest()
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    for i in range(0, size, _CHUNK):
                        h.update(view[i : i + _CHUNK])
                finally:
                    view.release()
                self.md5 = h.hexdigest()
                if self.check_blank:
                    first_nl = mm.find(b"\n")
                    crlf = first_nl > 0 and mm[first_nl - 1] == 13
                    first_blank = mm.find(b"\n\r\n" if crlf else b"\n\n")
                    end = size
                    while end > 0 and mm[end - 1] in (10, 13):
                        end -= 1
                    self.interior_blank = first_blank >= 0 and first_blank + 1 < end

    def _run_gz(self) -> None:
        h = hashlib.md5()
        dec = zlib.decompressobj(wbits=47)
        prev, pos, first_blank, last_content, pattern = b"", 0, -1, -1, b""
        with open(self.path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                if not self.check_blank:
                    continue
                data = dec.decompress(chunk)
                while dec.eof and dec.unused_data:  # multi-member gzip
                    rest = dec.unused_data
                    dec = zlib.decompressobj(wbits=47)
                    data += dec.decompress(rest)
                if not data:
                    continue
                if not pattern:
                    nl = data.find(b"\n")
                    pattern = b"\n\r\n" if nl > 0 and data[nl - 1] == 13 else b"\n\n"
                if first_blank < 0:
                    buf = prev + data
                    hit = buf.find(pattern)
                    if hit >= 0:
                        first_blank = pos - len(prev) + hit
                    prev = buf[-(len(pattern) - 1) :]
                stripped = len(data.rstrip(b"\r\n"))
                if stripped:
                    last_content = pos + stripped
                pos += len(data)
        self.md5 = h.hexdigest()
        self.interior_blank = first_blank >= 0 and first_blank + 1 < last_content

    def result(self) -> tuple[str, bool]:
        self.join()
        if self.error is not None:
            if isinstance(self.error, OSError | zlib.error | EOFError):
                raise ContractError(f"{self.path.name}: cannot read the file: {self.error}")
            raise self.error
        assert self.md5 is not None
        return self.md5, self.interior_blank


def _rewrite_blank_lines(src: Path, ncols: int, dst: Path) -> None:
    """Rare path: a copy where each blank line inside the file becomes ',,...' (all empty).

    DuckDB skips blank lines but counts them in the line numbers it reports, so a blank line
    becomes a row of empty values instead: every later line number stays exact, and the
    row is quarantined as malformed_row. The file is read whole (memory ~ its size).
    """
    data = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    body = data.rstrip(b"\r\n")
    filler = b"," * max(ncols - 1, 1)
    body = re.sub(rb"\n(?=\r?\n)", b"\n" + filler, body)
    dst.write_bytes(body + data[len(body):])


# --------------------------------------------------------------------------- typed values


class _Sql:
    """SQL expressions for one run (time zone, calendar).

    Every typed column is computed in two steps so that the common case stays cheap:
    `fast(r)` parses the raw text as it is (a strict pattern, no trimming or digit
    translation) and `slow(r)`, evaluated by DuckDB only for the rows where the fast path
    gave NULL, trims, translates digits and accepts every documented form.
    """

    def __init__(self, tz: str, calendar: str):
        self.tz, self.calendar = tz, calendar

    @staticmethod
    def clean(x: str, number: bool = False) -> str:
        """Trimmed text with ASCII digits; cheap for the usual plain-ASCII value."""
        src, dst = cal.DIGITS_FROM, cal.DIGITS_TO
        if number:  # Arabic decimal separator -> '.', Arabic thousands separator dropped
            src, dst = src + "\u066b\u066c", dst + "."
        edge = " OR ".join(
            f"{f}({x}, {ch})" for f in ("prefix", "suffix") for ch in ("' '", "chr(9)")
        )
        return (
            f"NULLIF(CASE WHEN length({x}) = strlen({x}) THEN "
            f"CASE WHEN {edge} THEN trim({x}, {lit(WS)}) ELSE {x} END "
            f"ELSE translate(trim({x}, {lit(WS)}), {lit(src)}, {lit(dst)}) END, '')"
        )

    @staticmethod
    def _jalali(x: str) -> str:
        return (
            f"jalali_date(TRY_CAST(substr({x}, 1, 4) AS INTEGER), "
            f"TRY_CAST(substr({x}, 6, 2) AS INTEGER), TRY_CAST(substr({x}, 9, 2) AS INTEGER))"
        )

    def _greg_text(self, x: str, gregorian: bool) -> str:
        """The text with its date part in the Gregorian calendar."""
        return x if gregorian else f"CAST({self._jalali(x)} AS VARCHAR) || substr({x}, 11)"

    def _ts(self, x: str, gregorian: bool, offsets: bool) -> str:
        g = self._greg_text(x, gregorian)
        sql = (
            f"CASE WHEN regexp_full_match({x}, {lit(TS_NAIVE_RE)}) "
            f"THEN TRY_CAST({g} AS TIMESTAMP)"
        )
        if offsets:
            sql += (
                f" WHEN regexp_full_match({x}, {lit(TS_OFFSET_RE)}) THEN "
                f"CAST(TRY_CAST({g} AS TIMESTAMPTZ) AT TIME ZONE {lit(self.tz)} AS TIMESTAMP)"
            )
        return sql + " END"

    def _date(self, x: str, gregorian: bool, full: bool) -> str:
        day = f"TRY_CAST({x} AS DATE)" if gregorian else self._jalali(x)
        sql = f"CASE WHEN regexp_full_match({x}, {lit(DATE_RE)}) THEN {day}"
        if full:
            sql += f" ELSE CAST({self._ts(x, gregorian, offsets=True)} AS DATE)"
        return sql + " END"

    @staticmethod
    def _plain(r: str) -> str:
        """r is ASCII with no surrounding blanks: its trimmed, translated form is itself."""
        return (
            f"(length({r}) = strlen({r}) AND NOT prefix({r}, ' ') AND NOT suffix({r}, ' ') "
            f"AND NOT prefix({r}, chr(9)) AND NOT suffix({r}, chr(9)))"
        )

    def parse(self, kind: str, r: str, native: str | None, id_int: bool) -> _Parse:
        """How to type the raw VARCHAR column `r` (see `_Parse`)."""
        t, f, c = f"t_{r}", f"f_{r}", f"c_{r}"
        gregorian = self.calendar == "gregorian" or (native or "VARCHAR") != "VARCHAR"
        if kind == "integer" or (kind == "id" and id_int):
            pattern = ID_INT_RE if kind == "id" else INT_RE
            return _Parse(
                cast=f"TRY_CAST({r} AS BIGINT)",
                fast=f"CASE WHEN CAST({t} AS VARCHAR) = {r} THEN {t} END",
                slow=f"CASE WHEN regexp_full_match({c}, {lit(pattern)}) "
                f"THEN TRY_CAST({c} AS BIGINT) END",
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "id":
            return _Parse(
                fast=f"CASE WHEN {self._plain(r)} THEN {r} END", slow=c,
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "number":
            return _Parse(
                cast=f"TRY_CAST({r} AS DOUBLE)",
                fast=f"CASE WHEN regexp_full_match({r}, {lit(NUM_RE)}) AND isfinite({t}) "
                f"THEN {t} END",
                slow=f"CASE WHEN regexp_full_match({c}, {lit(NUM_RE)}) "
                f"AND isfinite(TRY_CAST({c} AS DOUBLE)) THEN TRY_CAST({c} AS DOUBLE) END",
                drop_raw=f"CAST({f} AS VARCHAR) = {r}",
                number=True,
            )
        if kind in ("timestamp", "date") and gregorian:
            # fast: the raw text is exactly what DuckDB prints for the value (checked by
            # printing it back: cheaper than a regex, and as strict)
            sql_type = "TIMESTAMP" if kind == "timestamp" else "DATE"
            slow = (
                self._ts(c, True, offsets=True) if kind == "timestamp"
                else self._date(c, True, full=True)
            )
            return _Parse(
                cast=f"TRY_CAST({r} AS {sql_type})",
                fast=f"CASE WHEN CAST({t} AS VARCHAR) = {r} THEN {t} END",
                slow=slow,
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "timestamp":  # Jalali text: the raw text is always kept
            g = self._greg_text(r, False)
            return _Parse(
                fast=f"CASE WHEN regexp_full_match({r}, {lit(TS_CANON_RE)}) "
                f"THEN TRY_CAST({g} AS TIMESTAMP) END",
                slow=self._ts(c, False, offsets=True),
                drop_raw="",
            )
        if kind == "date":
            return _Parse(
                fast=self._date(r, False, full=False),
                slow=self._date(c, False, full=True),
                drop_raw="",
            )
        trimmed = f"NULLIF(trim({r}, {lit(WS)}), '')"
        if kind == "enum":
            return _Parse(
                fast=f"CASE WHEN {r} IN ({{enum}}) THEN {r} END", slow=f"lower({trimmed})",
                drop_raw=f"{f} IS NOT NULL", uses_clean=False,
            )
        if kind == "string":
            return _Parse(
                fast=f"CASE WHEN {self._plain(r)} THEN {r} END", slow=trimmed,
                drop_raw=f"{f} IS NOT NULL", uses_clean=False,
            )
        raise ValueError(kind)


@dataclass
class _Parse:
    """Typing one raw column r in layers, so that the common case stays cheap.

    cast (optional, `t_r`) -> fast (`f_r`: the raw text as it is, strict) -> only where fast
    is NULL: the cleaned text `c_r` (trimmed, ASCII digits) -> slow (from `c_r`, every
    documented form). `drop_raw`: a condition under which the raw text is exactly
    CAST(value AS VARCHAR), so it is not stored ("" = always store it).
    """

    fast: str
    slow: str
    drop_raw: str
    cast: str = ""
    number: bool = False
    uses_clean: bool = True


def _missing(r: str, v: str) -> str:
    return f"({v} IS NULL AND ({r} IS NULL OR trim({r}, {lit(WS)}) = ''))"


def _present_but_null(r: str, v: str) -> str:
    return f"({v} IS NULL AND {r} IS NOT NULL AND trim({r}, {lit(WS)}) <> '')"


# --------------------------------------------------------------------------- the run


class _Run:
    """One ingest: a DuckDB connection and the per-table state."""

    def __init__(
        self,
        raw_dir: Path,
        interim_dir: Path,
        quarantine_dir: Path,
        *,
        timezone: str,
        calendar: str,
        now_local: dt.datetime,
        max_bad_share: float,
        rename: dict[str, dict[str, str]],
        progress: Callable[[str], None],
        tmp: Path,
    ):
        self.raw_dir, self.interim_dir, self.quarantine_dir = raw_dir, interim_dir, quarantine_dir
        self.tz, self.calendar = timezone, calendar
        self.now_local, self.today = now_local, now_local.date()
        self.max_bad_share, self.rename, self.progress, self.tmp = (
            max_bad_share, rename, progress, tmp,
        )
        self.sql = _Sql(timezone, calendar)
        self.con = duckdb.connect(
            config={
                "preserve_insertion_order": True,  # row ids = file order (the line numbers)
                "temp_directory": str(tmp / "duckdb"),
            }
        )
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(f"SET TimeZone = {lit(timezone)}")
        if calendar == "jalali":
            self.con.execute(cal.jalali_macros_sql())
        self.con.execute("CREATE MACRO quote_value(x) AS concat(chr(39), x, chr(39))")
        self.sources: dict[str, _Source | None] = {}
        self.rejects: dict[str, list[tuple[int, str]]] = {}
        self.codes: dict[str, list[tuple[str, str]]] = {}
        self.md5: dict[str, str] = {}
        self.reports: dict[str, TableReport] = {}
        self.id_type = "string"
        self.as_of = dt.date.min

    def _cand(self, name: str) -> str:
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
        exactly CAST(value AS VARCHAR); otherwise they are printed back from the values.
        """
        i = TABLES[name].column_names.index(col) + 1
        return f"CASE WHEN raw IS NULL THEN CAST(v_{col} AS VARCHAR) ELSE raw[{i}] END"

    def rv(self, name: str, alias: str = "") -> str:
        """The raw list and the v_* columns of s_<name> (for the inner queries of `insert`)."""
        a = f"{alias}." if alias else ""
        return ", ".join([f"{a}raw"] + [f"{a}v_{c.name}" for c in TABLES[name].columns])

    def raws(self, name: str) -> str:
        return ", ".join(self.raw(name, c.name) for c in TABLES[name].columns)

    def shown(self, name: str, col: str) -> str:
        """The raw text, trimmed and quoted, for reasons."""
        return f"quote_value(trim({self.raw(name, col)}, {lit(WS)}))"

    # -- reading ---------------------------------------------------------------------

    def open_all(self) -> None:
        if not self.raw_dir.is_dir():
            raise ContractError(f"{self.raw_dir}: the raw folder does not exist")
        for name, t in TABLES.items():
            self.sources[name] = _open_source(self.con, self.raw_dir, t, self.rename.get(name, {}))

    def read_table(self, name: str) -> None:
        src = self.sources[name]
        assert src is not None
        self.progress(f"{name}: reading {src.file}")
        src.hasher = _Hasher(src.path, check_blank=src.kind == "csv")
        src.hasher.start()
        self._read(src, src.path)
        md5, interior_blank = src.hasher.result()
        self.md5[name] = md5
        if interior_blank:
            self.progress(f"{name}: {src.file} has blank lines: reading them as empty rows")
            copy = self.tmp / f"{name}.csv"
            _rewrite_blank_lines(src.path, len(src.names), copy)
            self._read(src, copy)
            copy.unlink()
        if name == "customers":
            # integer ids only if there are ids and every one looks like an integer
            all_int = self.one(f"SELECT bool_and(regexp_full_match(v_customer_id, "
                               f"{lit(ID_INT_RE)})) FROM s_{name}")
            self.id_type = "integer" if all_int else "string"

    def _scan_sql(self, src: _Source, path: Path) -> str:
        """SELECT of the raw text r_<col> of every contract column, and _empty."""
        t = src.table
        if src.kind == "csv":
            file_cols = [f"c{i}" for i in range(len(src.names))]
            spec = ", ".join(f"{lit(fc)}: 'VARCHAR'" for fc in file_cols)
            reader = (
                f"read_csv({lit(path)}, header = true, auto_detect = false, "
                f"columns = {{{spec}}}, delim = ',', quote = '\"', escape = '\"', "
                f"strict_mode = true, store_rejects = true, "
                f"rejects_table = {lit('rej_' + t.name)}, "
                f"rejects_scan = {lit('rejscan_' + t.name)})"
            )
        else:
            file_cols = list(src.header)
            reader = f"read_parquet({lit(path)})"
        select = []
        for c in t.columns:
            if c.name in src.mapping:
                fc = qi(file_cols[src.mapping[c.name]])
                select.append(f"CAST({fc} AS VARCHAR) AS r_{c.name}")
            else:
                select.append(f"CAST(NULL AS VARCHAR) AS r_{c.name}")
        empty = " AND ".join(f"{qi(fc)} IS NULL" for fc in file_cols)
        return f"SELECT {', '.join(select)}, ({empty}) AS _empty FROM {reader}"

    def _typed_sql(self, src: _Source, scan: str) -> str:
        """SELECT r_* (raw text), v_* (typed), _empty, _keep_raw: in layers."""
        t = src.table
        raws = [f"r_{c.name}" for c in t.columns]
        casts, fasts, cleans, out, keep_raw = [], [], [], [], []
        for c in t.columns:
            r = f"r_{c.name}"
            id_int = c.kind == "id" and t.name != "customers" and self.id_type == "integer"
            p = self.sql.parse(c.kind, r, src.native_types.get(c.name), id_int)
            if p.cast:
                casts.append(f"{p.cast} AS t_{r}")
            fasts.append(f"{p.fast.replace('{enum}', ', '.join(lit(v) for v in c.enum))} AS f_{r}")
            if p.uses_clean:
                cleans.append(
                    f"CASE WHEN f_{r} IS NULL AND {r} IS NOT NULL THEN "
                    f"{self.sql.clean(r, p.number)} END AS c_{r}"
                )
                missing = f"c_{r} IS NULL"
            else:
                missing = f"{r} IS NULL"
            keep_raw.append(f"NOT coalesce({p.drop_raw}, false)" if p.drop_raw else "true")
            out.append(
                f"CASE WHEN f_{r} IS NOT NULL THEN f_{r} WHEN {missing} THEN NULL "
                f"ELSE {p.slow} END AS v_{c.name}"
            )
        keep = raws + ["_empty"]
        layer1 = f"SELECT {', '.join(keep + casts)} FROM ({scan})"
        layer2 = f"SELECT {', '.join(keep + fasts)} FROM ({layer1})"
        layer3 = f"SELECT {', '.join(keep + [f'f_{r}' for r in raws] + cleans)} FROM ({layer2})"
        need = " OR ".join(keep_raw)
        return f"SELECT {', '.join(keep + out)}, ({need}) AS _keep_raw FROM ({layer3})"

    def _local_rules(self, t: Table) -> list[tuple[str, str, str]]:
        """(condition, rule, column) of the row-local rules 0-7, in priority order."""
        rules: list[tuple[str, str, str]] = [("_empty", "malformed_row", "")]
        for c in t.columns:
            if c.required:
                rules.append((_missing(f"r_{c.name}", f"v_{c.name}"), "missing_value", c.name))
        for c in t.columns:
            if c.kind in KIND_RULE:
                cond = _present_but_null(f"r_{c.name}", f"v_{c.name}")
                rules.append((cond, KIND_RULE[c.kind], c.name))
        for c in t.columns:
            if c.kind == "enum":
                allowed = ", ".join(lit(v) for v in c.enum)
                rules.append((f"v_{c.name} NOT IN ({allowed})", "bad_enum", c.name))
        for c in t.columns:
            conds = []
            if c.min_value is not None:
                op = "<=" if c.min_exclusive else "<"
                conds.append(f"v_{c.name} {op} {_num(c.min_value)}")
            if c.max_value is not None:
                conds.append(f"v_{c.name} > {_num(c.max_value)}")
            if conds:
                rules.append(("(" + " OR ".join(conds) + ")", "out_of_range", c.name))
        names = t.column_names
        if "period_start" in names and "period_end" in names:
            rules.append(("v_period_end <= v_period_start", "period_order", "period_end"))
        if "opened_at" in names and "resolved_at" in names:
            rules.append(("v_resolved_at < v_opened_at", "resolved_before_opened", "resolved_at"))
        now = f"TIMESTAMP '{self.now_local.isoformat(sep=' ')}'"
        today = f"DATE '{self.today.isoformat()}'"
        for col in _future_columns(t):
            bound = now if t.column(col).kind == "timestamp" else today
            rules.append((f"v_{col} > {bound}", "future_row", col))
        return rules

    def _read(self, src: _Source, path: Path) -> None:
        name = src.table.name
        for obj in (f"s_{name}", f"rej_{name}", f"rejscan_{name}"):
            self.con.execute(f"DROP TABLE IF EXISTS {obj}")
        rules = self._local_rules(src.table)
        self.codes[name] = [(rule, col) for _, rule, col in rules]
        code = " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(rules, 1))
        raws = ", ".join(f"r_{c.name}" for c in src.table.columns)
        typed = ", ".join(f"v_{c.name}" for c in src.table.columns)
        try:
            self.con.execute(
                f"CREATE TABLE s_{name} AS SELECT {typed}, "
                f"CAST(CASE {code} END AS UTINYINT) AS code, "
                f"CASE WHEN _keep_raw THEN [{raws}] END AS raw "
                f"FROM ({self._typed_sql(src, self._scan_sql(src, path))})"
            )
        except duckdb.Error as err:
            raise ContractError(f"{src.file}: cannot read the file: {_describe(err)}") from None
        self.rejects[name] = []
        if src.kind != "csv":
            return
        rows = self.q(
            f"SELECT line, min(error_type), arg_min(error_message, error_type), "
            f"arg_min(csv_line, error_type) FROM rej_{name} GROUP BY line ORDER BY line"
        )
        for line, etype, message, _ in rows:
            if "ENCODING" in etype.upper() or "UNICODE" in etype.upper():
                raise ContractError(f"{src.file}: not UTF-8 (line {line}: {message})")
        self.rejects[name] = [
            (int(line), f"{message} (line {_clip(text)!r})") for line, _, message, text in rows
        ]

    # -- quarantine --------------------------------------------------------------------

    def insert(self, name: str, inner: str) -> None:
        """Add quarantined rows: `inner` yields rid, rule, col, reason, ref_rid, r_*, v_*."""
        self.con.execute(
            f"INSERT INTO q_{name} SELECT rid, NULL, rule, col, reason, ref_rid, "
            f"{self.raws(name)} FROM ({inner})"
        )

    def start_quarantine(self, name: str) -> None:
        """q_<table>: the malformed lines and the rows failing a row-local rule (0-7)."""
        t = TABLES[name]
        raws = ", ".join(f"raw_{c.name} VARCHAR" for c in t.columns)
        self.con.execute(
            f"CREATE OR REPLACE TABLE q_{name} (rid BIGINT, line BIGINT, rule VARCHAR, "
            f"col VARCHAR, reason VARCHAR, ref_rid BIGINT, {raws})"
        )
        rejects = self.rejects.get(name, [])
        if rejects:
            self.con.executemany(
                f"INSERT INTO q_{name} (line, rule, col, reason) "
                f"VALUES (?, 'malformed_row', '', ?)",
                [[line, reason] for line, reason in rejects],
            )
        rule_list = ", ".join(lit(rule) for rule, _ in self.codes[name])
        col_list = ", ".join(lit(col) for _, col in self.codes[name])
        self.insert(
            name,
            f"SELECT rid, rule, col, {self._reason_sql(t)} AS reason, NULL AS ref_rid, "
            f"{self.rv(name)} FROM (SELECT rowid AS rid, [{rule_list}][code] AS rule, "
            f"[{col_list}][code] AS col, * FROM s_{name} WHERE code IS NOT NULL)",
        )

    def _reason_sql(self, t: Table) -> str:
        """Readable reason of a row-local rule, from rule, col, the raw and typed values."""
        name = t.name
        whens = ["WHEN rule = 'malformed_row' THEN 'every value is empty (blank line)'"]
        for c in t.columns:
            is_col = f"col = {lit(c.name)}"
            shown = self.shown(name, c.name)
            head = lit(c.name + " ")
            whens.append(
                f"WHEN rule = 'missing_value' AND {is_col} THEN {lit(c.name + ' is empty')}"
            )
            if c.kind in KIND_RULE:
                what = {
                    "date": f"a valid date (YYYY-MM-DD, {self.calendar} calendar)",
                    "timestamp": f"a valid timestamp ({TS_FORMAT}, {self.calendar} calendar)",
                    "integer": "a whole number",
                    "number": "a finite number",
                }[c.kind]
                whens.append(
                    f"WHEN rule = {lit(KIND_RULE[c.kind])} AND {is_col} THEN "
                    f"concat({head}, {shown}, {lit(' is not ' + what)})"
                )
            if c.kind == "enum":
                whens.append(
                    f"WHEN rule = 'bad_enum' AND {is_col} THEN concat({head}, {shown}, "
                    f"{lit(' is not one of ' + ', '.join(c.enum))})"
                )
            if c.min_value is not None or c.max_value is not None:
                parts = []
                if c.min_value is not None:
                    op, sign = ("<=", ">") if c.min_exclusive else ("<", ">=")
                    bound = _num(c.min_value)
                    text = lit(f" is not {sign} {bound}")
                    parts.append(f"WHEN v_{c.name} {op} {bound} THEN {text}")
                if c.max_value is not None:
                    parts.append(f"ELSE {lit(f' is not <= {_num(c.max_value)}')}")
                whens.append(
                    f"WHEN rule = 'out_of_range' AND {is_col} THEN concat({head}, {shown}, "
                    f"CASE {' '.join(parts)} END)"
                )
        names = t.column_names
        if "period_end" in names:
            whens.append(
                f"WHEN rule = 'period_order' THEN concat('period_end ', "
                f"{self.shown(name, 'period_end')}, ' is not after period_start ', "
                f"{self.shown(name, 'period_start')})"
            )
        if "resolved_at" in names:
            whens.append(
                f"WHEN rule = 'resolved_before_opened' THEN concat('resolved_at ', "
                f"{self.shown(name, 'resolved_at')}, ' is before opened_at ', "
                f"{self.shown(name, 'opened_at')})"
            )
        for col in _future_columns(t):
            if t.column(col).kind == "timestamp":
                when = f"now ({self.now_local.isoformat(sep=' ', timespec='seconds')} {self.tz})"
            else:
                when = f"today ({self.today.isoformat()}, {self.tz})"
            whens.append(
                f"WHEN rule = 'future_row' AND col = {lit(col)} THEN concat({lit(col + ' ')}, "
                f"{self.shown(name, col)}, {lit(' is later than ' + when)})"
            )
        return f"CASE {' '.join(whens)} END"

    # -- as-of -------------------------------------------------------------------------

    def infer_as_of(self) -> dt.date:
        latest = []
        for name in EVENT_TABLES:
            if self.sources.get(name) is not None:
                ts = TABLES[name].event_ts
                value = self.one(f"SELECT max(v_{ts}) FROM s_{name} WHERE code IS NULL")
                if value is not None:
                    latest.append(value)
        if not latest:
            raise ContractError(
                f"{self.raw_dir}: cannot infer the as-of date: no valid event row in "
                f"{', '.join(EVENT_TABLES)}; give the as-of date explicitly"
            )
        return max(latest).date() + dt.timedelta(days=1)

    # -- customers -----------------------------------------------------------------------

    def finish_customers(self) -> None:
        name = "customers"
        self.start_quarantine(name)
        cand = self._cand(name)
        # 8 after_as_of
        self.insert(
            name,
            f"SELECT rid, 'after_as_of' AS rule, 'signup_date' AS col, concat('signup_date ', "
            f"{self.shown(name, 'signup_date')}, ' is on or after the as-of date {self.as_of}') "
            f"AS reason, NULL AS ref_rid, {self.rv(name)} FROM ({cand}) "
            f"WHERE v_signup_date >= DATE '{self.as_of}'",
        )
        # 13 duplicate_key: customer_id (compared as integers in integer mode), then
        # referral_code among the rows left
        id_expr = "CAST(v_customer_id AS BIGINT)" if self.id_type == "integer" else "v_customer_id"
        for key, expr in (("customer_id", id_expr), ("referral_code", "v_referral_code")):
            self.insert(
                name,
                f"SELECT rid, 'duplicate_key' AS rule, {lit(key)} AS col, concat({lit(key + ' ')}, "
                f"{self.shown(name, key)}, ' already on line {{ref}}') AS reason, "
                f"first AS ref_rid, {self.rv(name)} FROM (SELECT *, "
                f"min(rid) OVER (PARTITION BY {expr}) AS first "
                f"FROM ({cand}) WHERE v_{key} IS NOT NULL) WHERE rid <> first",
            )
        # 15 unknown_referrer, transitively: kept referral codes are those reachable from a
        # customer referred by nobody through customers that are kept themselves
        self.insert(
            name,
            f"""
            WITH RECURSIVE cand AS ({cand}),
            ok(code) AS (
                SELECT v_referral_code FROM cand
                WHERE v_referred_by IS NULL AND v_referral_code IS NOT NULL
                UNION
                SELECT c.v_referral_code FROM cand c JOIN ok ON c.v_referred_by = ok.code
                WHERE c.v_referral_code IS NOT NULL
            )
            SELECT rid, 'unknown_referrer' AS rule, 'referred_by' AS col,
                concat('referred_by ', {self.shown(name, 'referred_by')},
                    CASE WHEN v_referred_by IN (SELECT v_referral_code FROM s_{name}
                                                WHERE v_referral_code IS NOT NULL)
                    THEN ' is the referral_code of a quarantined customer (or of one referred '
                         || 'by a quarantined customer)'
                    ELSE ' is not any customer''s referral_code' END) AS reason,
                NULL AS ref_rid, {self.rv(name)}
            FROM cand
            WHERE v_referred_by IS NOT NULL AND v_referred_by NOT IN (SELECT code FROM ok)
            """,
        )
        # the lookup the other tables are judged against: one row per customer_id
        self.con.execute(
            f"""
            CREATE OR REPLACE TABLE cust AS
            SELECT id, bool_or(kept) AS kept, max(CASE WHEN kept THEN signup END) AS signup
            FROM (SELECT {id_expr} AS id, v_signup_date AS signup,
                         s.code IS NULL AND q.rid IS NULL AS kept
                  FROM s_{name} s LEFT JOIN q_{name} q ON s.rowid = q.rid
                  WHERE v_customer_id IS NOT NULL)
            GROUP BY id
            """
        )
        self.finish(name, {"customer_id": id_expr}, ["customer_id"])

    # -- subscriptions and events ------------------------------------------------------

    def finish_linked(self, name: str) -> None:
        t = TABLES[name]
        date_col = t.event_ts or "period_start"
        kind = "TIMESTAMP" if t.column(date_col).kind == "timestamp" else "DATE"
        self.start_quarantine(name)
        shown_id = self.shown(name, "customer_id")
        shown_date = self.shown(name, date_col)
        # 8 after_as_of, 9 unknown_customer, 10 customer_quarantined, 11 before_signup:
        # judged on narrow rows (id, date); the few failing rows are joined back for values
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE a_{name} AS
            SELECT * FROM (
                SELECT s.rowid AS rid, l.signup,
                    CASE WHEN s.v_{date_col} >= {kind} '{self.as_of}' THEN 1
                         WHEN l.id IS NULL THEN 2
                         WHEN NOT l.kept THEN 3
                         WHEN s.v_{date_col} < l.signup THEN 4
                    END AS c
                FROM s_{name} s LEFT JOIN cust l ON s.v_customer_id = l.id
                WHERE s.code IS NULL
            ) WHERE c IS NOT NULL
            """
        )
        if self.one(f"SELECT count(*) FROM a_{name}"):
            rules = ["after_as_of", "unknown_customer", "customer_quarantined", "before_signup"]
            cols = [date_col, "customer_id", "customer_id", date_col]
            self.insert(
                name,
                f"""
                SELECT a.rid, [{', '.join(lit(r) for r in rules)}][a.c] AS rule,
                    [{', '.join(lit(c) for c in cols)}][a.c] AS col,
                    CASE a.c
                    WHEN 1 THEN concat({lit(date_col + ' ')}, {shown_date},
                        ' is on or after the as-of date {self.as_of}')
                    WHEN 2 THEN concat('customer_id ', {shown_id}, ' is not in customers')
                    WHEN 3 THEN concat('customer_id ', {shown_id}, ' is quarantined in customers')
                    ELSE concat({lit(date_col + ' ')}, {shown_date}, ' is before signup_date ',
                        CAST(a.signup AS VARCHAR), ' of customer ', {shown_id})
                    END AS reason, NULL AS ref_rid, {self.rv(name, 's')}
                FROM a_{name} a JOIN s_{name} s ON s.rowid = a.rid
                """,
            )
        if name in EVENT_TABLES:
            # 12 duplicate_row: dropped while writing (sorted, equal to the previous row);
            # looked up exactly only if the kept count says there were any
            self.finish(name, {}, ["customer_id", date_col], dedup=True)
        else:
            # 13 duplicate_key (customer_id, period_start): the window runs on narrow rows,
            # the few duplicates are joined back for their values
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE k_{name} AS SELECT rid, first FROM ("
                f"SELECT rid, min(rid) OVER (PARTITION BY v_customer_id, v_period_start) AS first "
                f"FROM ({self._cand(name)})) WHERE rid <> first"
            )
            if self.one(f"SELECT count(*) FROM k_{name}"):
                self.insert(
                    name,
                    f"SELECT k.rid, 'duplicate_key' AS rule, 'customer_id+period_start' AS col, "
                f"concat('customer_id ', {shown_id}, ' already has a period starting ', "
                    f"CAST(v_period_start AS VARCHAR), ' on line {{ref}}') AS reason, "
                    f"k.first AS ref_rid, {self.rv(name, 's')} "
                    f"FROM k_{name} k JOIN s_{name} s ON s.rowid = k.rid",
                )
            self._period_overlap(name)
            self.finish(name, {}, ["customer_id", "period_start"])

    def _period_overlap(self, name: str) -> None:
        """14 period_overlap: a greedy walk in (period_start, line) order per customer.

        Only customers where some period starts before the latest end of the periods
        before it are walked (a recursive CTE, one step per period).
        """
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE p_{name} AS
            WITH c AS (SELECT rid, v_customer_id AS cust, v_period_start AS ps,
                              v_period_end AS pe FROM ({self._cand(name)})),
            flagged AS (
                SELECT cust, ps < max(pe) OVER (PARTITION BY cust ORDER BY ps, rid
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS hit FROM c
            )
            SELECT rid, cust, ps, pe, row_number() OVER (PARTITION BY cust ORDER BY ps, rid) AS k
            FROM c WHERE cust IN (SELECT cust FROM flagged WHERE hit)
            """
        )
        if not self.one(f"SELECT count(*) FROM p_{name}"):
            return
        self.insert(
            name,
            f"""
            WITH RECURSIVE walk(cust, k, rid, kept, m, mrid) AS (
                SELECT cust, k, rid, true, pe, rid FROM p_{name} WHERE k = 1
                UNION ALL
                SELECT p.cust, p.k, p.rid, p.ps >= w.m,
                       CASE WHEN p.ps >= w.m THEN p.pe ELSE w.m END,
                       CASE WHEN p.ps >= w.m THEN p.rid ELSE w.mrid END
                FROM walk w JOIN p_{name} p ON p.cust = w.cust AND p.k = w.k + 1
            )
            SELECT w.rid, 'period_overlap' AS rule, 'period_start' AS col,
                concat('period_start ', {self.shown(name, 'period_start')},
                       ' is before period_end ', CAST(w.m AS VARCHAR),
                       ' of the period on line {{ref}}') AS reason,
                w.mrid AS ref_rid, {self.rv(name, 's')}
            FROM walk w JOIN (SELECT rowid AS srid, * FROM s_{name}) s ON s.srid = w.rid
            WHERE NOT w.kept
            """,
        )

    # -- outputs -------------------------------------------------------------------------

    def finish(self, name: str, exprs: dict[str, str], order: list[str], dedup: bool = False):
        src = self.sources[name]
        assert src is not None
        kept = self._write_kept(name, exprs, order, dedup)
        rows = self.one(f"SELECT count(*) FROM s_{name}")
        if dedup and kept < rows - self.one(f"SELECT count(rid) FROM q_{name}"):
            self._find_duplicates(name)
        self._write_quarantine(name, src)
        self._report(name, src, kept, rows)

    def _write_kept(self, name: str, exprs: dict[str, str], order: list[str], dedup: bool) -> int:
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
        inner = f"SELECT {select}, rid AS _rid FROM ({self._cand(name)}) ORDER BY {', '.join(keys)}"
        if dedup:
            lags = ", ".join(f"lag({qi(c)}) OVER () AS {qi('_p_' + c)}" for c in cols)
            same = " AND ".join(f"{qi(c)} IS NOT DISTINCT FROM {qi('_p_' + c)}" for c in cols)
            inner = (
                f"SELECT * FROM (SELECT *, row_number() OVER () AS _n, {lags} FROM ({inner})) "
                f"WHERE NOT (_n > 1 AND {same})"
            )
        out = self.interim_dir / f"{name}.parquet"
        col_list = ", ".join(qi(c) for c in cols)
        return int(
            self.one(
                f"COPY (SELECT {col_list} FROM ({inner})) TO {lit(out)} "
                f"(FORMAT parquet, COMPRESSION snappy)"
            )
        )

    def _find_duplicates(self, name: str) -> None:
        """12 duplicate_row, exactly: a hash pre-filter, then equal rows within a hash."""
        t = TABLES[name]
        typed = ", ".join(f"v_{c.name}" for c in t.columns)
        h = f"hash({typed})"
        self.insert(
            name,
            f"""
            WITH cand AS ({self._cand(name)}),
            hot AS (SELECT h FROM (SELECT {h} AS h FROM cand) GROUP BY h HAVING count(*) > 1)
            SELECT rid, 'duplicate_row' AS rule, '' AS col,
                'exact copy of line {{ref}}' AS reason, first AS ref_rid, {self.rv(name)}
            FROM (SELECT *, min(rid) OVER (PARTITION BY {typed}) AS first
                  FROM cand WHERE {h} IN (SELECT h FROM hot))
            WHERE rid <> first
            """,
        )

    def _line_sql(self, name: str, kind: str) -> tuple[str, str, str]:
        """(joins, line, ref line): row ids -> line numbers (see the module docstring)."""
        if kind == "parquet":
            return "", "q.rid + 1", "q.ref_rid + 1"
        rejects = self.rejects.get(name, [])
        if not rejects:
            return "", "q.rid + 2", "q.ref_rid + 2"
        # accepted row k (0-based) comes after the j rejected lines with line_i - 1 - i <= k
        values = ", ".join(f"({line - 1 - i}, {i})" for i, (line, _) in enumerate(rejects, 1))
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE lmap_{name} AS SELECT t, max(j) AS j "
            f"FROM (VALUES {values}) v(t, j) GROUP BY t"
        )
        joins = (
            f" ASOF LEFT JOIN lmap_{name} m1 ON q.rid >= m1.t"
            f" ASOF LEFT JOIN lmap_{name} m2 ON q.ref_rid >= m2.t"
        )
        return joins, "q.rid + 2 + coalesce(m1.j, 0)", "q.ref_rid + 2 + coalesce(m2.j, 0)"

    def _write_quarantine(self, name: str, src: _Source) -> None:
        joins, line, ref = self._line_sql(name, src.kind)
        raws = ", ".join(f"q.raw_{c.name} AS {qi(c.name)}" for c in src.table.columns)
        out = self.quarantine_dir / f"{name}.parquet"
        self.con.execute(
            f"COPY (SELECT {lit(src.file)} AS source_file, "
            f"CAST(coalesce(q.line, {line}) AS BIGINT) AS line, q.col AS \"column\", q.rule, "
            f"replace(q.reason, '{{ref}}', coalesce(CAST({ref} AS VARCHAR), '?')) AS reason, "
            f"{raws} FROM q_{name} q{joins} ORDER BY 2, 4) "
            f"TO {lit(out)} (FORMAT parquet, COMPRESSION snappy)"
        )

    def _report(self, name: str, src: _Source, kept: int, rows: int) -> None:
        """`rows`: the rows DuckDB read (s_<name>); the CSV reader's rejects come on top."""
        rows_in = rows + len(self.rejects.get(name, []))
        by_rule = dict(self.q(f"SELECT rule, count(*) FROM q_{name} GROUP BY rule ORDER BY rule"))
        quarantined = sum(by_rule.values())
        unknown = set(by_rule) - set(RULES)
        if unknown:
            raise AssertionError(f"{name}: rule ids missing from contract.RULES: {sorted(unknown)}")
        if rows_in != kept + quarantined:
            raise AssertionError(
                f"{name}: counts do not reconcile: rows_in {rows_in:,} != kept {kept:,} + "
                f"quarantined {quarantined:,} ({by_rule})"
            )
        own = {r: n for r, n in by_rule.items() if r not in EXCLUDED_FROM_SHARE}
        share = sum(own.values()) / rows_in if rows_in else 0.0
        if share > self.max_bad_share:
            top = sorted(own.items(), key=lambda rn: (-rn[1], rn[0]))[:3]
            raise ContractError(
                f"{src.file}: {share:.1%} of the {rows_in:,} rows of table '{name}' are bad "
                f"(max_bad_share {self.max_bad_share:.1%}); top rules: "
                f"{', '.join(f'{r} {n:,}' for r, n in top)}. The export looks broken, not "
                f"the rows: fix the export (or its renames / calendar / time zone)"
            )
        self.reports[name] = TableReport(
            table=name, source=src.file, rows_in=rows_in, kept=kept, quarantined=quarantined,
            by_rule=by_rule, extra_columns=list(src.extra), md5=self.md5[name],
        )
        detail = ", ".join(f"{r} {n:,}" for r, n in by_rule.items())
        self.progress(
            f"{name}: {rows_in:,} rows, {kept:,} kept, {quarantined:,} quarantined"
            + (f" ({detail})" if detail else "")
        )
        for prefix in ("s", "q", "p", "k", "a", "lmap"):
            self.con.execute(f"DROP TABLE IF EXISTS {prefix}_{name}")

def _future_columns(t: Table) -> list[str]:
    cols = []
    for c in t.columns:
        if c.name in ("signup_date", "period_start", "resolved_at") or c.name == t.event_ts:
            cols.append(c.name)
    return cols


def _clip(text: str | None, n: int = 120) -> str:
    text = (text or "").rstrip("\r\n")
    return text if len(text) <= n else text[: n - 3] + "..."


def _describe(err: Exception) -> str:
    msg = str(err)
    m = re.search(r"Line: (\d+)", msg)
    first = _first(err)
    return f"{first} (line {m.group(1)})" if m and "line" not in first.lower() else first


def _now_local(now: dt.datetime | None, tz: str) -> dt.datetime:
    zone = ZoneInfo(tz)
    if now is None:
        now = dt.datetime.now(zone)
    if now.tzinfo is not None:
        now = now.astimezone(zone).replace(tzinfo=None)
    return now


def ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    *,
    timezone: str,
    calendar: str,
    as_of: dt.date | None,
    max_bad_share: float,
    rename: dict[str, dict[str, str]],
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate and type the raw export; see the module docstring for the rules.

    `now` is the wall clock (aware, or naive = already in `timezone`); it dates future rows.
    Writes interim_dir/<table>.parquet and quarantine_dir/<table>.parquet for every table
    present. On any error it raises (ContractError for the export's faults) and leaves the
    two folders for the caller to discard.
    """
    raw_dir, interim_dir, quarantine_dir = Path(raw_dir), Path(interim_dir), Path(quarantine_dir)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    if calendar not in CALENDARS:
        raise ValueError(f"calendar must be one of {CALENDARS}, not {calendar!r}")
    unknown = sorted(set(rename) - set(TABLES))
    if unknown:
        raise ValueError(f"rename: unknown table(s) {unknown}; tables are {list(TABLES)}")
    # DuckDB spills beside the outputs (same disk), in a folder removed at the end
    tmp = Path(tempfile.mkdtemp(prefix=".ingest-", suffix=".tmp", dir=interim_dir.parent))
    run = _Run(
        raw_dir, interim_dir, quarantine_dir, timezone=timezone, calendar=calendar,
        now_local=_now_local(now, timezone), max_bad_share=max_bad_share, rename=rename,
        progress=progress or (lambda _msg: None), tmp=tmp,
    )
    try:
        run.open_all()
        run.read_table("customers")
        for name in TABLES:
            if name != "customers" and run.sources[name] is not None:
                run.read_table(name)
        if as_of is None:
            run.as_of, source = run.infer_as_of(), "latest event + 1 day"
        else:
            run.as_of, source = as_of, "flag"
        run.finish_customers()
        for name in TABLES:
            if name != "customers" and run.sources[name] is not None:
                run.finish_linked(name)
    finally:
        for src in run.sources.values():
            if src is not None and src.hasher is not None and src.hasher.is_alive():
                src.hasher.join()
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
        as_of=run.as_of, as_of_source=source, timezone=timezone, calendar=calendar,
        id_type=run.id_type, tables=tables,
    )
