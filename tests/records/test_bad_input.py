"""Bad input, case by case, through `churn ingest` as a user runs it; and the faults around it.

Each row of CASES is one way a business's export can be broken: a name, how the export is
broken (a small hand-written export: tests/records/test_ingest.py's BASE with one change), and
what the product must do:

- `Ingests`: exit 0, the listed rows quarantined with their rule, column and reason, and no
  other row of any table; for every table rows in = kept + quarantined = kept + sum(by_rule)
  in the manifest, and the Parquet files hold exactly the counts the manifest reports;
- `Stop`: exit 2, a message naming the file and what to change, nothing written.

No case may end in a traceback (exit 1, or an exception other than SystemExit). The row cases
run with `data.max_bad_share: 1.0` (a few-row table with one bad row is 25 % bad); the cases
about the share use the product's default, 0.05. A case the product gets wrong today carries
`gap` (the finding): it is a strict xfail, kept out of what docs/reliability.md says the product
does and listed there as a known gap; fixing the product turns it into an XPASS (a failure) that
says to drop the `gap`.

docs/reliability.md is rendered from CASES (and the tables in tests/reliability.py, which name
the tests elsewhere that prove the other cases and the faults):
`.venv/bin/python -m tests.reliability > docs/reliability.md`.
"""

from __future__ import annotations

import ast
import datetime as dt
import fcntl
import gzip
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline import artifacts
from pipeline.cli import app
from tests.pipeline.helpers import ROOT, write_params

from .test_ingest import CHARGES, CUSTOMERS, SUBSCRIPTIONS, TICKETS, USAGE, write_raw

runner = CliRunner()

THIS = "tests/records/test_bad_input.py"
REGENERATE = ".venv/bin/python -m tests.reliability > docs/reliability.md"
# what every row case runs with (the export's as-of date given, as README step 5 suggests)
DATA = {"as_of": "2024-03-01", "max_bad_share": 1.0}
SHARE = {"max_bad_share": 0.05}  # the product's default


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Q:
    """One quarantined row: table, line, rule (None: any), column and words of the reason."""

    table: str
    line: int
    rule: str | None
    column: str = ""
    reason: str = ""

    def text(self, lines: str = "") -> str:
        where = lines or f"line {self.line}"
        rule = f" as `{self.rule}`" if self.rule else " (by any rule)"
        col = f" ({self.column})" if self.column else ""
        why = f": “{self.reason}”" if self.reason else ""
        return f"quarantines `{self.table}` {where}{rule}{col}{why}"


@dataclass(frozen=True)
class Kept:
    """A check on the kept rows (interim folder -> assert), with the words the page shows."""

    text: str
    check: Callable[[Path], None]


@dataclass(frozen=True)
class Ingests:
    quarantined: tuple[Q, ...] | None = ()  # exactly these rows (None: not checked)
    counts: dict[str, tuple[int | None, int | None, int | None]] = field(default_factory=dict)
    kept: Kept | None = None

    def text(self) -> str:
        parts = []
        qs = list(self.quarantined or ())
        while qs:  # rows quarantined alike are said once: `usage` lines 1, 2, 3 as ...
            same = [q for q in qs if (q.table, q.rule, q.column, q.reason)
                    == (qs[0].table, qs[0].rule, qs[0].column, qs[0].reason)]
            lines = f"lines {', '.join(str(q.line) for q in same)}" if len(same) > 1 else ""
            parts.append(same[0].text(lines))
            qs = [q for q in qs if q not in same]
        parts = parts or ["keeps every row"]
        for table, (n_in, n_kept, n_q) in self.counts.items():
            if n_kept is None:
                parts.append(f"`{table}`: {n_in:,} rows in")
            else:
                parts.append(f"`{table}`: {n_in:,} in = {n_kept:,} kept + {n_q:,} quarantined")
        if self.kept is not None:
            parts.append(self.kept.text)
        return "; ".join(parts)


@dataclass(frozen=True)
class Stop:
    """exit 2, the message holding every one of `words`, nothing written."""

    words: tuple[str, ...]

    def text(self) -> str:
        return "stops, exit 2, nothing written: " + " … ".join(f"“{w}”" for w in self.words)


@dataclass(frozen=True)
class OneOf:
    """Either outcome is right (how a gap is fixed is the fixer's call)."""

    options: tuple[Ingests | Stop, ...]

    def text(self) -> str:
        return ", or ".join(o.text() for o in self.options)


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    case: str  # the case in a few words
    broken: str  # how the export is broken
    files: dict[str, str | bytes | None]  # overrides of BASE (None removes a file)
    expect: Ingests | Stop | OneOf
    data: dict = field(default_factory=dict)  # params.yaml `data` on top of DATA
    note: str = ""  # what else the page should say
    gap: str = ""  # the product misbehaves: the finding (the test is a strict xfail)
    no_raw: bool = False  # the raw folder itself is missing

    @property
    def test_id(self) -> str:
        return f"{THIS}::test_bad_input[{self.id}]"

    def does(self) -> str:
        return self.expect.text() + (f". {self.note}" if self.note else "")


# --------------------------------------------------------------------------- export builders

H_USAGE = "customer_id,ts,messages\n"


def add(name: str, base: str, *lines: str) -> dict[str, str]:
    """`base` with `lines` appended (the first appended line of a BASE table is line 5 for
    customers and usage, 6 for subscriptions, 3 for charges and tickets)."""
    return {name: base + "".join(line + "\n" for line in lines)}


def parquet(**columns: pa.Array) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


TS3 = pa.array([dt.datetime(2024, 2, 1, 10), dt.datetime(2024, 2, 2, 11),
                dt.datetime(2024, 2, 3, 12)], pa.timestamp("us"))
IDS3 = pa.array([1, 2, 3], pa.int64())

# 1,000 good usage rows, then the same with a quote opened and never closed on file line 992
BIG = H_USAGE + "".join(
    f"{1 + i % 3},{dt.datetime(2024, 2, 10) + dt.timedelta(minutes=i):%Y-%m-%d %H:%M:%S},{i % 50}\n"
    for i in range(1000))
_lines = BIG.splitlines(keepends=True)
_lines[991] = _lines[991].replace(",", ',"', 1)
BIG_OPEN_QUOTE = "".join(_lines)

JALALI_EXPORT = {
    "customers.csv": "customer_id,signup_date,channel,referral_code,referred_by\n"
    "1,1402-10-11,ads,R1,\n2,1402-10-20,organic,R2,R1\n",
    "subscriptions.csv": "customer_id,period_start,period_end,plan,fee,outcome\n"
    "1,1402-10-11,1402-11-11,basic,10,renewed\n2,1402-10-20,1402-11-20,pro,25,open\n",
    "usage.csv": H_USAGE + "1,1402-11-12 10:00:00,5\n2,1402-11-13 11:00:00,7\n",
    "charges.csv": "customer_id,ts,amount\n1,1402-11-12 10:00:00,10.5\n",
    "tickets.csv": "customer_id,opened_at,topic,resolved_at\n1,1402-11-14 09:00:00,billing,\n",
}


def value(interim: Path, table: str, column: str, **where) -> list:
    """The kept values of `column` in rows matching `where` (column = value)."""
    rows = pq.read_table(interim / f"{table}.parquet").to_pylist()
    return [r[column] for r in rows if all(r[k] == v for k, v in where.items())]


# --------------------------------------------------------------------------- the cases

FILES, ENCODING, ROWS, FORMATS, DATES, VALUES, IDS, WHOLE = (
    "Files and columns", "Encoding and line endings", "Rows, fields and quoting",
    "Compression and Parquet", "Dates, times and calendars", "Values", "Ids and references",
    "The export as a whole")
GROUPS = (FILES, ENCODING, ROWS, FORMATS, DATES, VALUES, IDS, WHOLE)

CASES: list[Case] = [
    # ----------------------------------------------------------------- files and columns
    Case("raw_folder_missing", FILES, "raw folder missing",
         "`paths.raw` names a folder that does not exist", {},
         Stop(("raw: the raw folder does not exist",)), no_raw=True),
    Case("missing_column", FILES, "missing column",
         "usage.csv has no `messages` column", {"usage.csv": "customer_id,ts\n1,2024-02-01 10:00:00\n"},
         Stop(("usage.csv: required column 'messages' is missing; columns found: "
               "'customer_id', 'ts'",))),
    Case("column_names_in_capitals", FILES, "column names in other letter case",
         "usage.csv's header is `Customer_ID,TS,Messages`",
         {"usage.csv": "Customer_ID,TS,Messages\n1,2024-02-01 10:00:00,5\n"},
         Stop(("usage.csv: required column 'customer_id' is missing; columns found: "
               "'Customer_ID', 'TS', 'Messages'",)),
         note="Names match exactly; map yours with `data.rename`"),
    Case("duplicate_header_column", FILES, "a column twice in the header",
         "usage.csv's header is `customer_id,ts,messages,messages`",
         {"usage.csv": "customer_id,ts,messages,messages\n1,2024-02-01 10:00:00,5,6\n"},
         Stop(("usage.csv: column 'messages' appears twice (positions 3 and 4)",))),
    Case("padded_header_names", FILES, "blanks around column names",
         "usage.csv's header is ` customer_id , ts , messages `",
         {"usage.csv": " customer_id , ts , messages " + USAGE[len(H_USAGE) - 1:]},
         Ingests(counts={"usage": (3, 3, 0)})),
    Case("optional_column_absent", FILES, "optional column absent",
         "tickets.csv has no `resolved_at` column",
         {"tickets.csv": "customer_id,opened_at,topic\n1,2024-02-05 09:00:00,billing\n"},
         Ingests(counts={"tickets": (1, 1, 0)},
                 kept=Kept("resolved_at is empty (the ticket is open)",
                           lambda i: _eq(value(i, "tickets", "resolved_at"), [None])))),
    Case("bracketed_column_name", FILES, "a column name in square brackets",
         "usage.csv carries an extra column named `[/note]`",
         {"usage.csv": "customer_id,ts,messages,[/note]\n1,2024-02-01 10:00:00,5,x\n"},
         Ingests(counts={"usage": (1, 1, 0)}),
         note="The extra column is ignored and listed in the summary"),
    Case("first_line_blank", FILES, "blank first line",
         "usage.csv starts with an empty line, the header on line 2", {"usage.csv": "\n" + USAGE},
         Stop(("usage.csv: line 1 is empty (expected a header line)",))),
    Case("comment_above_header", FILES, "a comment line above the header",
         "usage.csv starts with `# exported 2024-03-01`",
         {"usage.csv": "# exported 2024-03-01\n" + USAGE},
         Stop(("usage.csv: required column 'customer_id' is missing; columns found: "
               "'# exported 2024-03-01'",))),
    Case("excel_sep_line", FILES, "Excel's `sep=,` line",
         "usage.csv starts with `sep=,` (as Excel writes for other locales)",
         {"usage.csv": "sep=,\n" + USAGE},
         Stop(("usage.csv: required column 'customer_id' is missing; columns found: 'sep=', ''",))),
    Case("tab_delimiter", FILES, "wrong delimiter (tab)",
         "usage.csv is tab-separated", {"usage.csv": USAGE.replace(",", "\t")},
         Stop(("usage.csv: required column 'customer_id' is missing",
               "the delimiter looks wrong, the contract expects ','"))),
    Case("header_only_parquet", FILES, "header-only Parquet file",
         "usage.parquet has the columns and no rows",
         {"usage.csv": None, "usage.parquet": parquet(
             customer_id=pa.array([], pa.int64()), ts=pa.array([], pa.timestamp("us")),
             messages=pa.array([], pa.int64()))},
         Stop(("usage.parquet: table 'usage' has no rows", "data.allow_empty"))),
    Case("header_only_hint", FILES, "header-only file: the hint on the screen",
         "usage.csv holds only its header; `churn ingest` prints the stop",
         {"usage.csv": H_USAGE},
         Stop(("usage.csv: table 'usage' has no rows",
               "allow it in params.yaml with `data.allow_empty: [usage]`"))),
    # ----------------------------------------------------------------- encoding, line endings
    Case("non_utf8_header", ENCODING, "non-UTF-8 bytes in the header",
         "usage.csv's header holds a Latin-1 `é` (byte 0xE9)",
         {"usage.csv": b"customer_id,ts,m\xe9ssages\n1,2024-02-01 10:00:00,5\n"},
         Stop(("usage.csv: not UTF-8 (line 1, the header)",))),
    Case("windows_1256", ENCODING, "Windows-1256 (Persian Windows) file",
         "customers.csv is encoded in Windows-1256, a channel in Persian on line 3",
         {"customers.csv": CUSTOMERS.replace("organic", "تبليغات").encode("cp1256")},
         Stop(("customers.csv: not UTF-8 (line 3",))),
    Case("utf16", ENCODING, "UTF-16 file",
         "usage.csv is UTF-16 with its BOM (as some Windows tools save)",
         {"usage.csv": USAGE.encode("utf-16")},
         Stop(("usage.csv: not UTF-8 (line 1, the header)",))),
    Case("nul_byte", ENCODING, "a NUL byte in a value",
         "usage line 5 is `1,2024-02-01 10:00:07,\\x005`",
         {"usage.csv": USAGE.encode() + b"1,2024-02-01 10:00:07,\x005\n"},
         Ingests((Q("usage", 5, "bad_integer", "messages", "is not a whole number"),),
                 {"usage": (4, 3, 1)})),
    Case("cr_line_endings", ENCODING, "CR-only line endings (classic Mac)",
         "customers.csv ends its lines with `\\r` alone",
         {"customers.csv": CUSTOMERS.replace("\n", "\r")},
         Stop(("customers.csv: its lines end in a carriage return alone",))),
    Case("mixed_line_endings", ENCODING, "mixed line endings",
         "usage.csv has LF line endings and one line ending in CRLF (line 5)",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:07,5\r", "1,2024-02-01 10:00:08,6"),
         OneOf((Ingests(counts={"usage": (5, 5, 0)}),
                Stop(("usage.csv: cannot read the file", "It mixes line endings (\\r\\n on 1 "
                      "lines, \\n on", "convert it to one kind"))))),
    # ----------------------------------------------------------------- rows, fields, quoting
    Case("unterminated_quote_last_line", ROWS, "unterminated quote on the last line",
         "usage line 5 is `1,\"2024-02-01 10:00:00,5` (the quote never closes)",
         add("usage.csv", USAGE, '1,"2024-02-01 10:00:00,5'),
         Ingests((Q("usage", 5, "malformed_row", "", "Value with unterminated quote found"),),
                 {"usage": (4, 3, 1)})),
    Case("unterminated_quote_inside", ROWS, "unterminated quote inside a file",
         "usage.csv has 1,000 data rows; the one on line 992 opens a quote that never closes",
         {"usage.csv": BIG_OPEN_QUOTE},
         Stop(("usage.csv: line 992 opens a quote", "never closes",
               "the rest of the file (9 line(s) after it)",
               "close the quote"))),
    Case("quote_closed_late", ROWS, "a quoted value closed too late inside a file",
         "usage line 5 is `\"1` and line 6 `\"x,2024-02-01 10:00:07,5`: one record over two "
         "lines whose quote closes before stray text",
         add("usage.csv", USAGE, '"1', '"x,2024-02-01 10:00:07,5', "1,2024-02-01 10:00:08,6"),
         Ingests((Q("usage", 5, "malformed_row", "", "Value with unterminated quote found"),),
                 {"usage": (5, 4, 1)})),
    Case("quote_closed_late_at_the_end", ROWS, "a quoted value closed too late at the end",
         "usage.csv ends with line 5 `\"1` and line 6 `\"x,2024-02-01 10:00:07,5`: the last "
         "record spans two lines and its quote closes before stray text",
         add("usage.csv", USAGE, '"1', '"x,2024-02-01 10:00:07,5'),
         Ingests((Q("usage", 5, "malformed_row", "", "Value with unterminated quote found"),),
                 {"usage": (4, 3, 1)})),
    Case("too_few_fields", ROWS, "a field too few",
         "usage line 5 is `1,2024-02-01 10:00:00`", add("usage.csv", USAGE, "1,2024-02-01 10:00:00"),
         Ingests((Q("usage", 5, "malformed_row", "", "Expected Number of Columns: 3 Found: 2"),),
                 {"usage": (4, 3, 1)})),
    Case("extra_empty_fields", ROWS, "extra empty fields (an unquoted comma)",
         "customers line 5 is `4,2024-01-05,Google, Inc,,`: six fields for five columns",
         add("customers.csv", CUSTOMERS, "4,2024-01-05,Google, Inc,,"),
         Ingests((Q("customers", 5, "malformed_row", "", "Expected Number of Columns: 5 "
                   "Found: 6"),), {"customers": (4, 3, 1)})),
    Case("trailing_comma", ROWS, "a trailing comma",
         "usage line 5 is `1,2024-02-01 10:00:07,5,`: an empty fourth field for three columns",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:07,5,"),
         Ingests((Q("usage", 5, "malformed_row", "", "Expected Number of Columns: 3 Found: 4"),),
                 {"usage": (4, 3, 1)})),
    Case("blanks_only_line", ROWS, "a line of blanks",
         "usage line 5 is three spaces",
         add("usage.csv", USAGE, "   ", "1,2024-02-01 10:00:07,5"),
         Ingests((Q("usage", 5, "malformed_row", "", "Expected Number of Columns: 3 Found: 1"),),
                 {"usage": (5, 4, 1)})),
    Case("empty_fields_line", ROWS, "a line of empty fields",
         "usage line 5 is `,,`", add("usage.csv", USAGE, ",,"),
         Ingests((Q("usage", 5, "malformed_row", "", "every value is empty"),),
                 {"usage": (4, 3, 1)})),
    Case("cut_off_last_line", ROWS, "export cut off mid-row",
         "usage.csv ends in the middle of line 5, `1,2024-02-0`, without a newline",
         {"usage.csv": USAGE + "1,2024-02-0"},
         Ingests((Q("usage", 5, "malformed_row", "", "Expected Number of Columns: 3 Found: 2"),),
                 {"usage": (4, 3, 1)})),
    Case("no_final_newline", ROWS, "no newline after the last row",
         "usage.csv's last line, `1,2024-02-01 10:00:07,x`, has no newline",
         {"usage.csv": USAGE + "1,2024-02-01 10:00:07,x"},
         Ingests((Q("usage", 5, "bad_integer", "messages", "messages 'x' is not a whole number"),),
                 {"usage": (4, 3, 1)})),
    Case("header_repeated", ROWS, "two exports concatenated",
         "usage.csv is two copies of the file one after the other (the header again on line 5)",
         {"usage.csv": USAGE + USAGE},
         Ingests((Q("usage", 5, "bad_timestamp", "ts", "ts 'ts' is not a valid timestamp"),
                  Q("usage", 6, "duplicate_row", "", "exact copy of line 2"),
                  Q("usage", 7, "duplicate_row", "", "exact copy of line 3"),
                  Q("usage", 8, "duplicate_row", "", "exact copy of line 4")),
                 {"usage": (7, 3, 4)})),
    Case("huge_field", ROWS, "a 2 MB value",
         "customers line 5 has a channel of 2,000,000 characters",
         add("customers.csv", CUSTOMERS, "4,2024-01-05," + "x" * 2_000_000 + ",R4,"),
         Ingests((Q("customers", 5, "malformed_row", "", "Maximum line size of 2000000 bytes"),),
                 {"customers": (4, 3, 1)})),
    # ----------------------------------------------------------------- compression, Parquet
    Case("truncated_gzip", FORMATS, "truncated gzip",
         "usage.csv.gz lost its last 30 bytes (an interrupted copy)",
         {"usage.csv": None,
          "usage.csv.gz": gzip.compress((USAGE * 200).encode(), mtime=0)[:-30]},
         Stop(("usage.csv.gz: cannot read the file", "Unexpected end of GZIP stream"))),
    Case("gzip_bom_crlf", FORMATS, "gzip of a BOM + CRLF file",
         "usage.csv.gz holds a UTF-8 BOM, CRLF line endings and a bad count on line 5",
         {"usage.csv": None, "usage.csv.gz": gzip.compress(
             ("\ufeff" + USAGE + "1,2024-02-01 10:00:07,five\n").replace("\n", "\r\n").encode(),
             mtime=0)},
         Ingests((Q("usage", 5, "bad_integer", "messages", "messages 'five' is not a whole number"),),
                 {"usage": (4, 3, 1)})),
    Case("parquet_double_counts", FORMATS, "Parquet DOUBLE where counts belong",
         "usage.parquet's `messages` is DOUBLE: 5.0, 5.5, NaN",
         {"usage.csv": None, "usage.parquet": parquet(
             customer_id=IDS3, ts=TS3, messages=pa.array([5.0, 5.5, float("nan")]))},
         Ingests((Q("usage", 2, "bad_integer", "messages", "messages '5.5' is not a whole number"),
                  Q("usage", 3, "bad_integer", "messages", "messages 'nan' is not a whole number")),
                 {"usage": (3, 1, 2)},
                 Kept("5.0 is kept as 5", lambda i: _eq(value(i, "usage", "messages"), [5])))),
    Case("parquet_epoch_timestamps", FORMATS, "Parquet epoch seconds for timestamps",
         "usage.parquet's `ts` is BIGINT seconds since 1970",
         {"usage.csv": None, "usage.parquet": parquet(
             customer_id=IDS3, ts=pa.array([1706781600, 1706868000, 1706954400]),
             messages=pa.array([1, 2, 3]))},
         Stop(("usage.parquet: 100.0% of the 3 rows of table 'usage' are bad",
               "top rules: bad_timestamp 3", "fix the export")), data=SHARE),
    Case("parquet_date_for_timestamp", FORMATS, "Parquet DATE where a timestamp belongs",
         "usage.parquet's `ts` is DATE (no time of day)",
         {"usage.csv": None, "usage.parquet": parquet(
             customer_id=IDS3, ts=pa.array([dt.date(2024, 2, 1)] * 3), messages=pa.array([1, 2, 3]))},
         Ingests(tuple(Q("usage", n, "bad_timestamp", "ts", "ts '2024-02-01' is not a valid "
                         "timestamp") for n in (1, 2, 3)), {"usage": (3, 0, 3)})),
    Case("parquet_uint64", FORMATS, "Parquet UINT64 beyond BIGINT",
         "usage.parquet's `messages` is UINT64: 5, 2^64 - 1, 2^63 - 1",
         {"usage.csv": None, "usage.parquet": parquet(
             customer_id=IDS3, ts=TS3, messages=pa.array([5, 2**64 - 1, 2**63 - 1], pa.uint64()))},
         Ingests((Q("usage", 2, "bad_integer", "messages",
                    "messages '18446744073709551615' is not a whole number"),),
                 {"usage": (3, 2, 1)},
                 Kept("2^63 - 1 is kept", lambda i: _eq(
                     sorted(value(i, "usage", "messages")), [5, 2**63 - 1])))),
    # ----------------------------------------------------------------- dates, times, calendars
    Case("feb_29_common_year", DATES, "29 February of a common year",
         "customers line 5 signed up on 2023-02-29", add("customers.csv", CUSTOMERS, "4,2023-02-29,ads,R4,"),
         Ingests((Q("customers", 5, "bad_date", "signup_date",
                    "signup_date '2023-02-29' is not a valid date"),), {"customers": (4, 3, 1)})),
    Case("hour_24", DATES, "hour 24",
         "usage line 5 is at `2024-02-01 24:00:00`", add("usage.csv", USAGE, "1,2024-02-01 24:00:00,5"),
         Ingests((Q("usage", 5, "bad_timestamp", "ts", "is not a valid timestamp"),),
                 {"usage": (4, 3, 1)})),
    Case("us_date_format", DATES, "day/month order (02/01/2024)",
         "customers line 5 signed up on `02/01/2024`",
         add("customers.csv", CUSTOMERS, "4,02/01/2024,ads,R4,"),
         Ingests((Q("customers", 5, "bad_date", "signup_date",
                    "signup_date '02/01/2024' is not a valid date (YYYY-MM-DD"),),
                 {"customers": (4, 3, 1)})),
    Case("timestamp_without_time", DATES, "a timestamp without a time of day",
         "usage line 5 is at `2024-02-01`", add("usage.csv", USAGE, "1,2024-02-01,5"),
         Ingests((Q("usage", 5, "bad_timestamp", "ts", "ts '2024-02-01' is not a valid timestamp"),),
                 {"usage": (4, 3, 1)})),
    Case("offset_out_of_range", DATES, "an impossible offset",
         "usage line 5 is at `2024-02-01 10:00:00+25:00`",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:00+25:00,5"),
         Ingests((Q("usage", 5, "bad_timestamp", "ts", "is not a valid timestamp"),),
                 {"usage": (4, 3, 1)})),
    Case("zone_abbreviation", DATES, "a zone abbreviation instead of an offset",
         "usage line 5 is at `2024-02-01 10:00:00 IRST`",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:00 IRST,5"),
         Ingests((Q("usage", 5, "bad_timestamp", "ts", "is not a valid timestamp"),),
                 {"usage": (4, 3, 1)})),
    Case("offset_on_a_date", DATES, "an offset timestamp in a date column",
         "customers line 5 signed up at `2024-01-05T23:30:00Z`",
         add("customers.csv", CUSTOMERS, "4,2024-01-05T23:30:00Z,ads,R4,"),
         Ingests(counts={"customers": (4, 4, 0)},
                 kept=Kept("signup_date 2024-01-06: converted to Asia/Tehran (03:00 the next "
                           "day), then the day kept", lambda i: _eq(
                               value(i, "customers", "signup_date", customer_id=4),
                               [dt.date(2024, 1, 6)])))),
    Case("year_9999", DATES, "a far-future date",
         "customers line 5 signed up on 9999-12-31", add("customers.csv", CUSTOMERS, "4,9999-12-31,ads,R4,"),
         Ingests((Q("customers", 5, "future_row", "signup_date",
                    "signup_date '9999-12-31' is later than today"),), {"customers": (4, 3, 1)})),
    Case("resolved_in_future", DATES, "resolved in the future",
         "tickets line 3 was resolved at 2099-01-01 00:00:00",
         add("tickets.csv", TICKETS, "1,2024-02-06 09:00:00,billing,2099-01-01 00:00:00"),
         Ingests((Q("tickets", 3, "future_row", "resolved_at",
                    "resolved_at '2099-01-01 00:00:00' is later than now"),),
                 {"tickets": (2, 1, 1)})),
    Case("period_of_no_days", DATES, "a period that ends on its first day",
         "subscriptions line 6 runs from 2024-02-05 to 2024-02-05",
         add("subscriptions.csv", SUBSCRIPTIONS, "3,2024-02-05,2024-02-05,basic,10,open"),
         Ingests((Q("subscriptions", 6, "period_order", "period_end",
                    "period_end '2024-02-05' is not after period_start '2024-02-05'"),),
                 {"subscriptions": (5, 4, 1)})),
    Case("gregorian_read_as_jalali", DATES, "Gregorian dates, `data.calendar: jalali`",
         "the Gregorian export read with `data.calendar: jalali`", {},
         Stop(("customers.csv: 100.0% of the 3 rows of table 'customers' are bad",
               "top rules: bad_date 3", "(or its renames / calendar / time zone)")),
         data={**SHARE, "calendar": "jalali"}),
    Case("jalali_read_as_gregorian", DATES, "Jalali dates, `data.calendar: gregorian`",
         "a Jalali export (1402-10-11 ...) read with the default `data.calendar: gregorian` "
         "and `data.as_of: null`", JALALI_EXPORT,
         Stop(("event rows are dated before 1900-01-01: is the export Jalali? Then set "
               "data.calendar: jalali",)), data={**SHARE, "as_of": None}),
    Case("jalali_date_in_gregorian_file", DATES, "one Jalali date in a Gregorian file",
         "customers line 5 signed up on 1402-11-12 in a 2024 export (`data.calendar: gregorian`)",
         add("customers.csv", CUSTOMERS, "4,1402-11-12,ads,R4,"),
         Ingests((Q("customers", 5, "before_1900", "signup_date",
                    "signup_date '1402-11-12' is before 1900-01-01: a Jalali date read as "
                    "Gregorian?"),), {"customers": (4, 3, 1)})),
    # ----------------------------------------------------------------- values
    Case("negative_amount", VALUES, "negative top-up",
         "charges line 3 has amount -5", add("charges.csv", CHARGES, "1,2024-02-01 11:00:00,-5"),
         Ingests((Q("charges", 3, "out_of_range", "amount", "amount '-5' is not > 0"),),
                 {"charges": (2, 1, 1)})),
    Case("nps_below_zero", VALUES, "NPS below 0",
         "nps line 2 scores -1", {"nps.csv": "customer_id,ts,score\n1,2024-02-10 10:00:00,-1\n"
                                  "2,2024-02-10 10:00:00,0\n"},
         Ingests((Q("nps", 2, "out_of_range", "score", "score '-1' is not >= 0"),),
                 {"nps": (2, 1, 1)})),
    Case("nps_fraction", VALUES, "fractional NPS",
         "nps line 2 scores 7.5", {"nps.csv": "customer_id,ts,score\n1,2024-02-10 10:00:00,7.5\n"
                                   "2,2024-02-10 10:00:00,10.0\n"},
         Ingests((Q("nps", 2, "bad_integer", "score", "score '7.5' is not a whole number"),),
                 {"nps": (2, 1, 1)},
                 Kept("10.0 is kept as 10", lambda i: _eq(value(i, "nps", "score"), [10])))),
    Case("counts_as_text_numbers", VALUES, "counts in other notations",
         "usage lines 5-7: messages `5.0`, `1e3`, `\"1,000\"`",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:05,5.0", "1,2024-02-01 10:00:06,1e3",
             '1,2024-02-01 10:00:07,"1,000"'),
         Ingests((Q("usage", 6, "bad_integer", "messages", "messages '1e3' is not a whole number"),
                  Q("usage", 7, "bad_integer", "messages", "messages '1,000' is not a whole number")),
                 {"usage": (6, 4, 2)},
                 Kept("5.0 is kept as 5", lambda i: _eq(
                     value(i, "usage", "messages", ts=dt.datetime(2024, 2, 1, 10, 0, 5)), [5])))),
    Case("huge_integer", VALUES, "a count beyond 64 bits",
         "usage line 5 has messages 99999999999999999999 (20 digits)",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:01,99999999999999999999",
             "1,2024-02-01 10:00:02,9223372036854775807"),
         Ingests((Q("usage", 5, "bad_integer", "messages", "is not a whole number"),),
                 {"usage": (5, 4, 1)}, Kept("9223372036854775807 (2^63 - 1, line 6) is kept",
                                            lambda i: _eq(max(value(i, "usage", "messages")),
                                                          2**63 - 1)))),
    Case("huge_and_infinite_amounts", VALUES, "amounts beyond a double, NaN, infinity",
         "charges lines 3-6: amounts `1e309`, `nan`, `inf`, `1e308`",
         add("charges.csv", CHARGES, "1,2024-02-01 11:00:00,1e309", "1,2024-02-01 12:00:00,nan",
             "1,2024-02-01 13:00:00,inf", "1,2024-02-01 14:00:00,1e308"),
         Ingests((Q("charges", 3, "bad_number", "amount", "amount '1e309' is not a finite number"),
                  Q("charges", 4, "bad_number", "amount", "amount 'nan' is not a finite number"),
                  Q("charges", 5, "bad_number", "amount", "amount 'inf' is not a finite number")),
                 {"charges": (5, 2, 3)},
                 Kept("1e308 is kept", lambda i: _eq(max(value(i, "charges", "amount")), 1e308)))),
    Case("null_placeholders", VALUES, "`NULL` and `NA` written as values",
         "usage line 5 has customer_id `NULL`, line 6 messages `NA`",
         add("usage.csv", USAGE, "NULL,2024-02-01 10:00:00,5", "1,2024-02-01 10:00:00,NA"),
         Ingests((Q("usage", 5, "unknown_customer", "customer_id", "customer_id 'NULL' is not in "
                    "customers"),
                  Q("usage", 6, "bad_integer", "messages", "messages 'NA' is not a whole number")),
                 {"usage": (5, 3, 2)}),
         note="Only an empty field is missing"),
    Case("enum_empty", VALUES, "an empty required value from a list",
         "subscriptions line 6 has an empty outcome",
         add("subscriptions.csv", SUBSCRIPTIONS, "2,2024-02-10,2024-03-10,pro,25,"),
         Ingests((Q("subscriptions", 6, "missing_value", "outcome", "outcome is empty"),),
                 {"subscriptions": (5, 4, 1)})),
    Case("enum_padded_capitals", VALUES, "a list value in capitals, padded",
         "subscriptions line 6 has outcome ` Renewed `",
         add("subscriptions.csv", SUBSCRIPTIONS, "2,2024-02-10,2024-03-10,pro,25, Renewed "),
         Ingests(counts={"subscriptions": (5, 5, 0)},
                 kept=Kept("stored as `renewed`", lambda i: _eq(value(
                     i, "subscriptions", "outcome", period_start=dt.date(2024, 2, 10)),
                     ["renewed"])))),
    # ----------------------------------------------------------------- ids and references
    Case("self_referral", IDS, "a customer referred by themself",
         "customers line 5 has referral_code R4 and referred_by R4",
         add("customers.csv", CUSTOMERS, "4,2024-01-05,ads,R4,R4"),
         Ingests((Q("customers", 5, "unknown_referrer", "referred_by", "referred_by 'R4' is the "
                    "referral_code of a quarantined customer"),), {"customers": (4, 3, 1)})),
    Case("referral_cycle", IDS, "a referral cycle",
         "customers 4 and 5 (lines 5, 6) each name the other as referrer",
         add("customers.csv", CUSTOMERS, "4,2024-01-05,ads,R4,R5", "5,2024-01-05,ads,R5,R4"),
         Ingests((Q("customers", 5, "unknown_referrer", "referred_by"),
                  Q("customers", 6, "unknown_referrer", "referred_by")),
                 {"customers": (5, 3, 2)})),
    Case("referred_by_quarantined", IDS, "referred by a quarantined customer",
         "customer 4 (line 5) has an impossible signup date; customer 5 (line 6) names R4",
         add("customers.csv", CUSTOMERS, "4,2024-13-05,ads,R4,", "5,2024-01-05,ads,R5,R4"),
         Ingests((Q("customers", 5, "bad_date", "signup_date"),
                  Q("customers", 6, "unknown_referrer", "referred_by",
                    "referred_by 'R4' is the referral_code of a quarantined customer")),
                 {"customers": (5, 3, 2)})),
    Case("ids_with_zeros_and_decimals", IDS, "integer ids written `001`, `1.0`",
         "usage lines 5-7: customer_id `001`, `007`, `1.0` (the customers' ids are 1, 2, 3)",
         add("usage.csv", USAGE, "001,2024-02-01 10:00:05,5", "007,2024-02-01 10:00:06,5",
             "1.0,2024-02-01 10:00:07,5"),
         Ingests((Q("usage", 6, "unknown_customer", "customer_id", "customer_id '007' is not in "
                    "customers"),
                  Q("usage", 7, "unknown_customer", "customer_id", "customer_id '1.0' is not in "
                    "customers")),
                 {"usage": (6, 4, 2)},
                 Kept("`001` is customer 1", lambda i: _eq(len(value(i, "usage", "ts",
                                                                      customer_id=1)), 2))),
         note="Integer ids compare as integers; `1.0` is not an id"),
    Case("id_beyond_18_digits", IDS, "an id of 20 digits",
         "usage line 5 has customer_id 12345678901234567890",
         add("usage.csv", USAGE, "12345678901234567890,2024-02-01 10:00:01,5"),
         Ingests((Q("usage", 5, "unknown_customer", "customer_id",
                    "customer_id '12345678901234567890' is not in customers"),),
                 {"usage": (4, 3, 1)})),
    Case("empty_customer_id", IDS, "a customer without an id",
         "customers line 5 has an empty customer_id", add("customers.csv", CUSTOMERS, ",2024-01-05,ads,R4,"),
         Ingests((Q("customers", 5, "missing_value", "customer_id", "customer_id is empty"),),
                 {"customers": (4, 3, 1)})),
    # ----------------------------------------------------------------- the export as a whole
    Case("over_bad_share", WHOLE, "a table over the bad-share threshold",
         "2 of usage's 5 rows have text for messages, with the default `data.max_bad_share: 0.05`",
         add("usage.csv", USAGE, "1,2024-02-01 10:00:00,x", "1,2024-02-01 10:00:00,y"),
         Stop(("usage.csv: 40.0% of the 5 rows of table 'usage' are bad (max_bad_share 5.0%)",
               "top rules: bad_integer 2", "The export looks broken, not the rows")),
         data=SHARE),
]


def _eq(got, expected) -> None:
    assert got == expected, (got, expected)


# --------------------------------------------------------------------------- running a case


def run_cli(case: Case, folder: Path):
    """`churn ingest` on the case's export, as a user runs it, in `folder` (the cwd)."""
    raw = write_raw(folder, case.files)
    if case.no_raw:
        shutil.rmtree(raw)
    params = write_params(folder, paths={"raw": "raw"}, data={**DATA, **case.data})
    return runner.invoke(app, ["ingest", "--params", str(params)])


def check_ingests(expect: Ingests, folder: Path) -> None:
    interim = folder / "data" / "interim"
    manifest = json.loads((interim / "_manifest.json").read_text())
    for name, t in manifest["tables"].items():
        assert t["rows_in"] == t["kept"] + t["quarantined"] == t["kept"] + sum(
            t["by_rule"].values()), (name, t)
        if t["file"] is None:
            continue
        assert pq.read_metadata(interim / f"{name}.parquet").num_rows == t["kept"], name
        q = pq.read_table(interim / "quarantine" / f"{name}.parquet").to_pylist()
        assert len(q) == t["quarantined"], name
    for name, (n_in, n_kept, n_q) in expect.counts.items():
        t = manifest["tables"][name]
        got = (t["rows_in"], t["kept"], t["quarantined"])
        want = tuple(g if w is None else w for g, w in zip(got, (n_in, n_kept, n_q), strict=True))
        assert got == want, (name, got)
    if expect.quarantined is not None:
        found = {}
        for path in sorted((interim / "quarantine").glob("*.parquet")):
            for r in pq.read_table(path).to_pylist():
                found[(path.stem, r["line"])] = r
        assert sorted(found) == sorted((q.table, q.line) for q in expect.quarantined), found
        for q in expect.quarantined:
            r = found[(q.table, q.line)]
            if q.rule is not None:
                assert (r["rule"], r["column"]) == (q.rule, q.column), r
            assert q.reason in r["reason"], r
    if expect.kept is not None:
        expect.kept.check(interim)


def check_stop(expect: Stop, folder: Path, result) -> None:
    assert result.exit_code == 2, result.output
    for words in expect.words:
        assert words in result.output, result.output
    assert "Nothing was written" in result.output
    assert not (folder / "data" / "interim").exists()
    assert not list(folder.glob("data/.interim.*.tmp"))


def check(expect, folder: Path, result) -> None:
    # no case ends in a traceback, whatever it does
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, result.output
    if isinstance(expect, OneOf):
        expect = next((o for o in expect.options if isinstance(o, Stop) == (result.exit_code == 2)),
                      expect.options[0])
    if isinstance(expect, Stop):
        check_stop(expect, folder, result)
    else:
        assert result.exit_code == 0, result.output
        check_ingests(expect, folder)


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.gap)] if case.gap else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check(case.expect, tmp_path, run_cli(case, tmp_path))


def test_cases_are_well_formed():
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.group for c in CASES} <= set(GROUPS)
    for c in CASES:
        assert c.case and c.broken and "|" not in c.case + c.broken + c.does() + c.gap, c.id


# --------------------------------------------------------------------------- faults around ingest

def _churn(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


# what each run on the small file system does to it before `churn ingest` runs
DISK_FAULTS = {
    "ro": "mount -o remount,ro data || exit 98",
    "full": "dd if=/dev/zero of=data/filler bs=4k 2>/dev/null || true",
}


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """`churn ingest` on a 1 MB file system mounted over data/ (each run in a mount namespace
    of its own: as root, or in a user namespace), holding a previous run's outputs: once with
    the file system read-only, once with it full, both at the same time. Per run: its exit
    code, its output, and data/ before and after it."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot mount a small file system here")
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else [
        "unshare", "--user", "--map-root-user", "--mount"]
    base = tmp_path_factory.mktemp("disk")
    write_raw(base, {})
    params = write_params(base, paths={"raw": "raw"}, data=DATA)
    with pytest.MonkeyPatch.context() as mp:  # the previous run, on the ordinary disk
        mp.chdir(base)
        first = runner.invoke(app, ["ingest", "--params", str(params)])
    assert first.exit_code == 0, first.output
    churn = shlex.join(_churn("ingest"))
    procs = {}
    for name, fault in DISK_FAULTS.items():
        ws = base / name
        ws.mkdir()
        shutil.copytree(base / "raw", ws / "raw")
        shutil.copy(params, ws / "params.yaml")
        (ws / "data").mkdir()
        script = "\n".join([
            "set -u",
            "mount -t tmpfs -o size=1m churn-test data || exit 99",
            "cp -a ../data/. data/ || exit 97",  # the previous run's outputs
            fault,
            f"{churn} > out 2>&1; echo $? > rc",
            "cp -a data/. after/; rm -f after/filler",
        ])
        (ws / "after").mkdir()
        procs[name] = subprocess.Popen([*unshare, "sh", "-c", script], cwd=ws, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        ws = base / name
        if proc.returncode in (98, 99) or not (ws / "rc").exists():
            pytest.skip(f"cannot mount a small file system here: {out.strip()}")
        runs[name] = (int((ws / "rc").read_text()), (ws / "out").read_text(), ws / "after")
    return base / "data", runs


def _whole(data: Path) -> str:
    """The digest of data/interim after checking it is one whole run; no temp folder beside."""
    artifacts.read(artifacts.Input("interim", data / "interim", "ingest"))
    assert sorted(p.name for p in data.glob(".interim.*.tmp")) == []
    return artifacts.StageRecord.read(data / "interim").digest


def test_read_only_output_ends_in_a_message(small_disk):
    """The output's file system is read-only: exit 2 naming what cannot be written, the
    previous outputs unchanged."""
    before, runs = small_disk
    code, out, after = runs["ro"]
    assert code == 2, out
    assert "Traceback" not in out
    assert "cannot write data/.interim.lock: Read-only file system" in out
    assert _whole(after) == _whole(before)


def test_full_disk_leaves_the_previous_outputs(small_disk):
    """The disk fills while ingest writes: the previous outputs stay whole, nothing is left."""
    before, runs = small_disk
    code, out, after = runs["full"]
    assert code != 0 and "No space left on device" in out, out
    assert _whole(after) == _whole(before)


def test_full_disk_ends_in_a_message(small_disk):
    """The disk fills while ingest writes: exit 2 and a message saying so, no traceback."""
    _, runs = small_disk
    code, out, _ = runs["full"]
    assert "Traceback" not in out, out[-2000:]
    assert code == 2 and "No space left on device" in out, out


def _waiting_for(lock: Path) -> int:
    """How many processes wait for the flock on `lock` (Linux /proc/locks, '->' lines)."""
    inode = f":{os.stat(lock).st_ino} "
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and inode in line)


def test_two_ingests_at_once_leave_one_whole_run(tmp_path):
    """Two `churn ingest` of different exports at the same time (both held at the output's
    lock until both wait for it): both succeed, one after the other; the output is one whole
    run, the last one's, and nothing is left beside it."""
    write_params(tmp_path, paths={"raw": "raw"}, data=DATA)
    write_raw(tmp_path / "a", {})
    write_raw(tmp_path / "b", add("usage.csv", USAGE, "1,2024-02-01 10:00:07,9"))
    data = tmp_path / "data"
    data.mkdir()
    lock = data / ".interim.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = {name: subprocess.Popen(_churn("ingest", "--raw", f"{name}/raw"),
                                        cwd=tmp_path, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name in ("a", "b")}
        deadline = time.monotonic() + 120
        while Path("/proc/locks").exists() and _waiting_for(lock) < 2:
            assert time.monotonic() < deadline, "the two runs never waited for the lock"
            assert all(p.poll() is None for p in procs.values()), "a run ended early"
            time.sleep(0.05)
        fcntl.flock(held, fcntl.LOCK_UN)
    outs = {name: p.communicate(timeout=120)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, outs[name]
    _whole(data)
    manifest = json.loads((data / "interim" / "_manifest.json").read_text())
    usage = manifest["tables"]["usage"]["rows_in"]
    assert (manifest["raw_dir"], usage) in (("a/raw", 3), ("b/raw", 4))
    rows = pq.read_metadata(data / "interim" / "usage.parquet").num_rows
    assert rows == usage


# --------------------------------------------------------------------------- the page


def test_reliability_page_is_current():
    from tests import reliability

    page = ROOT / "docs" / "reliability.md"
    assert page.exists() and page.read_text() == reliability.render(), (
        f"docs/reliability.md is stale: run `{REGENERATE}`")


def test_the_page_names_tests_that_exist():
    """Every test the page cites is defined where it says (and a DIRTY row it cites is in
    test_ingest.EXPECTED); every gap it lists is a strict xfail."""
    from tests import reliability
    from tests.records.test_ingest import EXPECTED

    defined: dict[str, dict[str, ast.FunctionDef]] = {}
    for ref in reliability.cited_tests():
        path, _, name = ref.partition("::")
        name = name.split("[")[0]
        if path not in defined:
            tree = ast.parse((ROOT / path).read_text())
            defined[path] = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defined[path], f"{ref}: no such test"
    dirty = {(t, line, rule) for t, line, _, rule, _ in EXPECTED}
    for row in reliability.COVERED:
        assert set(row.dirty) <= dirty, (row.case, set(row.dirty) - dirty)
    for fault in reliability.FAULTS:
        for ref in fault.gap_tests:
            path, _, name = ref.partition("::")
            marks = [ast.unparse(d) for d in defined[path][name].decorator_list]
            assert any("xfail(strict=True" in m for m in marks), ref
