"""records.ingest on tiny hand-written exports (real DuckDB, exact counts and lines)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import jdatetime
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from records import calendar as cal
from records.config import IngestConfig
from records.contract import RULES, TABLES
from records.ingest import ContractError, IngestReport, ingest

NOW = dt.datetime(2024, 6, 1, 12, 0)  # naive = Asia/Tehran wall clock
AS_OF = dt.date(2024, 3, 1)

CUSTOMERS = """customer_id,signup_date,channel,referral_code,referred_by
1,2024-01-01,ads,R1,
2,2024-01-10,organic,R2,R1
3,2024-02-01,ads,R3,
"""
SUBSCRIPTIONS = """customer_id,period_start,period_end,plan,fee,outcome
1,2024-01-01,2024-02-01,basic,10,renewed
1,2024-02-01,2024-03-01,basic,10,open
2,2024-01-10,2024-02-10,pro,25,open
3,2024-02-01,2024-03-01,basic,10,open
"""
USAGE = """customer_id,ts,messages
1,2024-02-01 10:00:00,5
2,2024-02-02 11:00:00,7
3,2024-02-03 12:00:00,9
"""
CHARGES = """customer_id,ts,amount
1,2024-02-01 10:00:00,10.5
"""
TICKETS = """customer_id,opened_at,topic,resolved_at
1,2024-02-05 09:00:00,billing,2024-02-05 10:00:00
"""
BASE = {
    "customers.csv": CUSTOMERS,
    "subscriptions.csv": SUBSCRIPTIONS,
    "usage.csv": USAGE,
    "charges.csv": CHARGES,
    "tickets.csv": TICKETS,
}


def write_raw(folder: Path, files: dict[str, str | bytes | None]) -> Path:
    """BASE overridden by `files` (None removes a file); returns the raw folder."""
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, content in {**BASE, **files}.items():
        if content is None:
            continue
        data = content.encode() if isinstance(content, str) else content
        (raw / name).write_bytes(data)
    return raw


def run(
    folder: Path, files: dict[str, str | bytes | None] | None = None, **kw
) -> tuple[IngestReport, Path, Path]:
    raw = write_raw(folder, files or {})
    interim, quarantine = folder / "interim", folder / "quarantine"
    interim.mkdir()
    quarantine.mkdir()
    now = kw.pop("now", NOW)
    args = dict(timezone="Asia/Tehran", calendar="gregorian", as_of=AS_OF, max_bad_share=1.0)
    args.update(kw)
    report = ingest(raw, interim, quarantine, IngestConfig(**args), now=now)
    for t in report.tables.values():  # the reconciliation holds in every test
        assert t.rows_in == t.kept + t.quarantined == t.kept + sum(t.by_rule.values())
        assert set(t.by_rule) <= set(RULES)
    return report, interim, quarantine


def rows(path: Path) -> list[dict]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def quarantined(q: Path, table: str) -> dict[int, dict]:
    return {r["line"]: r for r in rows(q / f"{table}.parquet")}


def counts(report: IngestReport, table: str) -> tuple[int, int, int]:
    t = report.tables[table]
    return t.rows_in, t.kept, t.quarantined


# --------------------------------------------------------------------------- one row per rule

DIRTY = {
    "customers.csv": CUSTOMERS
    + "4,2024-13-01,ads,R4,\n"  # 5 bad_date
    + "2,2024-01-11,ads,R9,\n"  # 6 duplicate_key customer_id
    + "5,2024-01-05,ads,R5,RX\n"  # 7 unknown_referrer
    + "6,2024-03-02,ads,R6,\n"  # 8 after_as_of
    + "7,,ads,R7,\n"  # 9 missing_value
    + "8,2024-07-01,ads,R8,\n"  # 10 future_row
    + "9,2024-01-02,ads,R1,\n",  # 11 duplicate_key referral_code
    "subscriptions.csv": SUBSCRIPTIONS
    + "2,2024-02-10,2024-03-10,pro,25,paused\n"  # 6 bad_enum
    + "3,2024-02-20,2024-02-10,basic,10,open\n"  # 7 period_order
    + "1,2024-01-15,2024-02-15,basic,10,renewed\n"  # 8 period_overlap (line 2)
    + "1,2024-01-01,2024-01-20,basic,10,renewed\n"  # 9 duplicate_key (line 2)
    + "3,2024-01-15,2024-02-01,basic,10,renewed\n"  # 10 before_signup
    + "9,2024-01-15,2024-02-15,basic,10,open\n"  # 11 customer_quarantined
    + "99,2024-01-15,2024-02-15,basic,10,open\n"  # 12 unknown_customer
    + "2,2024-03-10,2024-04-10,pro,25,open\n"  # 13 after_as_of
    + "3,2024-02-05,2024-03-05,basic,-1,open\n"  # 14 out_of_range
    + "3,2024-02-05,2024-03-05,basic,x,open\n",  # 15 bad_number
    "usage.csv": USAGE
    + ",2024-02-01 10:00:00,5\n"  # 5 missing_value
    + "1,2024-02-30 10:00:00,5\n"  # 6 bad_timestamp
    + "1,2024-02-01 10:00:00,5.5\n"  # 7 bad_integer
    + "1,2024-07-01 10:00:00,5\n"  # 8 future_row
    + "1,2024-03-05 10:00:00,5\n"  # 9 after_as_of
    + "99,2024-02-01 10:00:00,5\n"  # 10 unknown_customer
    + "4,2024-02-01 10:00:00,5\n"  # 11 customer_quarantined
    + "3,2024-01-15 10:00:00,5\n"  # 12 before_signup
    + "2,2024-02-02 11:00:00,7\n"  # 13 duplicate_row (line 3)
    + "1,2024-02-01 10:00:00,5,oops\n"  # 14 malformed_row
    + "1,2024-02-01 10:00:00,-1\n"  # 15 out_of_range
    + "1,2024-02-04 10:00:00,6\n",  # 16 kept
    "charges.csv": CHARGES
    + "1,2024-02-01 11:00:00,0\n"  # 3 out_of_range
    + "2,2024-02-01 11:00:00,abc\n"  # 4 bad_number
    + "1,1402-11-01 11:00:00,5\n",  # 5 before_1900 (a Jalali date read as Gregorian)
    "tickets.csv": TICKETS
    + "1,2024-02-05 09:00:00,billing,2024-02-04 10:00:00\n"  # 3 resolved_before_opened
    + "2,2024-02-06 09:00:00,refund,\n"  # 4 bad_enum
    + "2,2024-02-06 09:00:00,Billing,\n",  # 5 kept (enums match case-insensitively)
    "nps.csv": "customer_id,ts,score\n1,2024-02-10 10:00:00,9\n2,2024-02-10 10:00:00,11\n",
}

# (table, line, column, rule, words of the reason)
EXPECTED = [
    ("customers", 5, "signup_date", "bad_date", "signup_date '2024-13-01' is not a valid date"),
    ("customers", 6, "customer_id", "duplicate_key", "customer_id '2' already on line 3"),
    ("customers", 7, "referred_by", "unknown_referrer", "referred_by 'RX' is not any"),
    ("customers", 8, "signup_date", "after_as_of", "on or after the as-of date 2024-03-01"),
    ("customers", 9, "signup_date", "missing_value", "signup_date is empty"),
    ("customers", 10, "signup_date", "future_row", "'2024-07-01' is later than today"),
    ("customers", 11, "referral_code", "duplicate_key", "referral_code 'R1' already on line 2"),
    ("subscriptions", 6, "outcome", "bad_enum", "outcome 'paused' is not one of"),
    ("subscriptions", 7, "period_end", "period_order", "period_end '2024-02-10' is not after"),
    ("subscriptions", 8, "period_start", "period_overlap", "of the period on line 2"),
    ("subscriptions", 9, "customer_id+period_start", "duplicate_key", "on line 2"),
    ("subscriptions", 10, "period_start", "before_signup", "before signup_date 2024-02-01"),
    ("subscriptions", 11, "customer_id", "customer_quarantined", "customer_id '9' is quarantined"),
    ("subscriptions", 12, "customer_id", "unknown_customer", "'99' is not in customers"),
    ("subscriptions", 13, "period_start", "after_as_of", "'2024-03-10' is on or after"),
    ("subscriptions", 14, "fee", "out_of_range", "fee '-1' is not >= 0"),
    ("subscriptions", 15, "fee", "bad_number", "fee 'x' is not a finite number"),
    ("usage", 5, "customer_id", "missing_value", "customer_id is empty"),
    ("usage", 6, "ts", "bad_timestamp", "ts '2024-02-30 10:00:00' is not a valid timestamp"),
    ("usage", 7, "messages", "bad_integer", "messages '5.5' is not a whole number"),
    ("usage", 8, "ts", "future_row", "is later than now (2024-06-01 12:00:00 Asia/Tehran)"),
    ("usage", 9, "ts", "after_as_of", "ts '2024-03-05 10:00:00' is on or after"),
    ("usage", 10, "customer_id", "unknown_customer", "customer_id '99' is not in customers"),
    ("usage", 11, "customer_id", "customer_quarantined", "customer_id '4' is quarantined"),
    ("usage", 12, "ts", "before_signup", "before signup_date 2024-02-01 of customer '3'"),
    ("usage", 13, "", "duplicate_row", "exact copy of line 3"),
    ("usage", 14, "", "malformed_row", "Expected Number of Columns: 3 Found: 4"),
    ("usage", 15, "messages", "out_of_range", "messages '-1' is not >= 0"),
    ("charges", 3, "amount", "out_of_range", "amount '0' is not > 0"),
    ("charges", 4, "amount", "bad_number", "amount 'abc' is not a finite number"),
    ("charges", 5, "ts", "before_1900", "ts '1402-11-01 11:00:00' is before 1900-01-01"),
    ("tickets", 3, "resolved_at", "resolved_before_opened", "is before opened_at"),
    ("tickets", 4, "topic", "bad_enum", "topic 'refund' is not one of"),
    ("nps", 3, "score", "out_of_range", "score '11' is not <= 10"),
]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    return run(tmp_path_factory.mktemp("dirty"), DIRTY)


@pytest.mark.parametrize(("table", "line", "column", "rule", "reason"), EXPECTED)
def test_each_rule_quarantines_its_row(dirty, table, line, column, rule, reason):
    _, _, q = dirty
    row = quarantined(q, table)[line]
    assert (row["source_file"], row["column"], row["rule"]) == (f"{table}.csv", column, rule)
    assert reason in row["reason"]


def test_every_rule_is_exercised():
    assert {e[3] for e in EXPECTED} == set(RULES)


def test_dirty_counts(dirty):
    report, interim, q = dirty
    assert counts(report, "customers") == (10, 3, 7)
    assert counts(report, "subscriptions") == (14, 4, 10)
    assert counts(report, "usage") == (15, 4, 11)
    assert counts(report, "charges") == (4, 1, 3)
    assert counts(report, "tickets") == (4, 2, 2)
    assert counts(report, "nps") == (2, 1, 1)
    assert report.tables["customers"].by_rule == {
        "after_as_of": 1, "bad_date": 1, "duplicate_key": 2, "future_row": 1,
        "missing_value": 1, "unknown_referrer": 1,
    }
    for table, expected in [("customers", 7), ("usage", 11), ("subscriptions", 10)]:
        assert len(quarantined(q, table)) == expected  # one row per line: no line used twice
    assert [r["customer_id"] for r in rows(interim / "customers.parquet")] == [1, 2, 3]
    kept = rows(interim / "usage.parquet")
    assert [(r["customer_id"], str(r["ts"]), r["messages"]) for r in kept] == [
        (1, "2024-02-01 10:00:00", 5), (1, "2024-02-04 10:00:00", 6),
        (2, "2024-02-02 11:00:00", 7), (3, "2024-02-03 12:00:00", 9),
    ]
    assert [r["topic"] for r in rows(interim / "tickets.parquet")] == ["billing", "billing"]


def test_quarantine_keeps_raw_values_and_schema(dirty):
    _, _, q = dirty
    schema = duckdb.sql(f"DESCRIBE SELECT * FROM '{q / 'usage.parquet'}'").fetchall()
    assert [(c[0], c[1]) for c in schema] == [
        ("source_file", "VARCHAR"), ("line", "BIGINT"), ("column", "VARCHAR"),
        ("rule", "VARCHAR"), ("reason", "VARCHAR"), ("customer_id", "VARCHAR"),
        ("ts", "VARCHAR"), ("messages", "VARCHAR"),
    ]
    usage = quarantined(q, "usage")
    assert (usage[5]["customer_id"], usage[5]["ts"], usage[5]["messages"]) == (
        None, "2024-02-01 10:00:00", "5",
    )
    assert (usage[7]["messages"], usage[13]["ts"]) == ("5.5", "2024-02-02 11:00:00")
    assert usage[14]["customer_id"] is None  # a malformed line has no values
    assert quarantined(q, "subscriptions")[15]["fee"] == "x"


def test_interim_types(dirty):
    _, interim, _ = dirty
    def describe(t: str) -> dict[str, str]:
        sql = f"DESCRIBE SELECT * FROM '{interim / t}.parquet'"
        return {c[0]: c[1] for c in duckdb.sql(sql).fetchall()}

    types = {t: describe(t) for t in TABLES}
    assert types["customers"] == {
        "customer_id": "BIGINT", "signup_date": "DATE", "channel": "VARCHAR",
        "referral_code": "VARCHAR", "referred_by": "VARCHAR",
    }
    assert types["subscriptions"]["fee"] == "DOUBLE"
    assert types["usage"] == {"customer_id": "BIGINT", "ts": "TIMESTAMP", "messages": "BIGINT"}
    assert types["tickets"]["resolved_at"] == "TIMESTAMP"


# --------------------------------------------------------------------------- whole-file errors


def test_missing_required_file(tmp_path):
    with pytest.raises(ContractError) as err:
        run(tmp_path, {"usage.csv": None})
    msg = str(err.value)
    assert "usage.csv" in msg and "usage.parquet" in msg and str(tmp_path / "raw") in msg


def test_optional_nps_absent(tmp_path):
    report, interim, q = run(tmp_path)
    assert report.tables["nps"].source is None and report.tables["nps"].md5 is None
    assert not (interim / "nps.parquet").exists() and not (q / "nps.parquet").exists()
    assert counts(report, "usage") == (3, 3, 0)
    assert rows(q / "usage.parquet") == []  # zero rows, still written


def test_missing_column_names_file_column_and_found(tmp_path):
    with pytest.raises(ContractError) as err:
        run(tmp_path, {"usage.csv": "customer_id,ts,msgs\n1,2024-02-01 10:00:00,5\n"})
    msg = str(err.value)
    assert "usage.csv" in msg and "'messages'" in msg and "'msgs'" in msg


def test_wrong_delimiter_is_named(tmp_path):
    with pytest.raises(ContractError, match="delimiter looks wrong"):
        run(tmp_path, {"usage.csv": "customer_id;ts;messages\n1;2024-02-01 10:00:00;5\n"})


def test_two_candidate_files(tmp_path):
    raw = write_raw(tmp_path, {})
    (raw / "usage.csv.gz").write_bytes(gzip.compress(USAGE.encode()))
    two = r"two files for table 'usage' \(usage.csv, usage.csv.gz\)"
    with pytest.raises(ContractError, match=two):
        run(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(ContractError, match="charges.csv: the file is empty"):
        run(tmp_path, {"charges.csv": b""})


def test_not_utf8_names_the_line(tmp_path):
    data = USAGE.encode() + b"1,2024-02-01 10:00:00,\xe9\xe8\n"
    with pytest.raises(ContractError, match=r"usage.csv: not UTF-8 \(line 5"):
        run(tmp_path, {"usage.csv": data})


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("usage.csv.gz", b"not gzip at all", "usage.csv.gz: cannot read the file"),
        ("usage.parquet", b"PAR1 not parquet", "usage.parquet: cannot read the Parquet file"),
    ],
)
def test_unreadable_files(tmp_path, name, data, message):
    with pytest.raises(ContractError, match=message):
        run(tmp_path, {"usage.csv": None, name: data})


# --------------------------------------------------------------------------- formats


def test_renames_and_extra_columns(tmp_path):
    report, interim, _ = run(
        tmp_path,
        {"usage.csv": "cust,ts,msgs,note\n1,2024-02-01 10:00:00,5,a\n2,2024-02-02 11:00:00,7,b\n"},
        rename={"usage": {"cust": "customer_id", "msgs": "messages"}},
    )
    assert counts(report, "usage") == (2, 2, 0)
    assert report.tables["usage"].extra_columns == ["note"]
    assert [c for c in rows(interim / "usage.parquet")[0]] == ["customer_id", "ts", "messages"]


def test_gzip_csv(tmp_path):
    data = gzip.compress((USAGE + "1,2024-02-01 10:00:00,x\n").encode(), mtime=0)
    report, _, q = run(tmp_path, {"usage.csv": None, "usage.csv.gz": data})
    assert report.tables["usage"].source == "usage.csv.gz"
    assert report.tables["usage"].md5 == hashlib.md5(data).hexdigest()
    assert counts(report, "usage") == (4, 3, 1)
    assert quarantined(q, "usage")[5]["rule"] == "bad_integer"


def test_parquet_input_with_a_wrong_typed_column(tmp_path):
    raw = write_raw(tmp_path, {"usage.csv": None})
    table = pa.table({
        "customer_id": pa.array([1, 2, 3], pa.int64()),
        "ts": pa.array([dt.datetime(2024, 2, 1, 10), dt.datetime(2024, 2, 2, 11),
                        dt.datetime(2024, 2, 3, 12)], pa.timestamp("us")),
        "messages": pa.array(["5", "lots", "9"]),  # a string column where integers belong
    })
    pq.write_table(table, raw / "usage.parquet")
    report, interim, q = run(tmp_path, {"usage.csv": None})
    assert counts(report, "usage") == (3, 2, 1)
    row = quarantined(q, "usage")[2]  # Parquet: line = row index + 1
    assert (row["source_file"], row["rule"], row["column"], row["messages"]) == (
        "usage.parquet", "bad_integer", "messages", "lots",
    )
    assert [r["messages"] for r in rows(interim / "usage.parquet")] == [5, 9]


def test_parquet_native_types_are_gregorian_and_offsets_converted(tmp_path):
    raw = write_raw(tmp_path, {"subscriptions.csv": None, "charges.csv": None})
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 2], pa.int64()),
        "period_start": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 10)]),
        "period_end": pa.array([dt.date(2024, 2, 1), dt.date(2024, 2, 10)]),
        "plan": ["basic", "pro"],
        "fee": pa.array([10.0, 25.5]),
        "outcome": ["renewed", "open"],
    }), raw / "subscriptions.parquet")
    pq.write_table(pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "ts": pa.array([dt.datetime(2024, 2, 1, 6, 30, tzinfo=dt.UTC)], pa.timestamp("us", "UTC")),
        "amount": pa.array([5], pa.int32()),
    }), raw / "charges.parquet")
    customers = "customer_id,signup_date,channel,referral_code,referred_by\n" \
        "1,1402-10-11,ads,R1,\n2,1402-10-20,ads,R2,\n3,1402-11-12,ads,R3,\n"  # Jalali text
    usage = "customer_id,ts,messages\n1,1402-11-12 10:00:00,5\n"
    report, interim, _ = run(
        tmp_path, {"subscriptions.csv": None, "charges.csv": None, "customers.csv": customers,
                   "usage.csv": usage, "tickets.csv": "customer_id,opened_at,topic,resolved_at\n"},
        calendar="jalali", allow_empty=("tickets",),
    )
    assert [r["signup_date"] for r in rows(interim / "customers.parquet")] == [
        dt.date(2024, 1, 1), dt.date(2024, 1, 10), dt.date(2024, 2, 1),
    ]
    subs = rows(interim / "subscriptions.parquet")
    assert [(r["period_start"], r["fee"]) for r in subs] == [
        (dt.date(2024, 1, 1), 10.0), (dt.date(2024, 1, 10), 25.5),
    ]
    charge = rows(interim / "charges.parquet")[0]
    assert (charge["ts"], charge["amount"]) == (dt.datetime(2024, 2, 1, 10, 0), 5.0)
    assert counts(report, "subscriptions") == (2, 2, 0)


def test_parquet_empty_strings_are_missing_as_empty_csv_fields_are(tmp_path):
    """A Parquet string column holds "" where a CSV file has an empty field: both are missing
    (an optional referrer, not an unknown one; a required id, quarantined)."""
    raw = write_raw(tmp_path, {"customers.csv": None, "usage.csv": None})
    pq.write_table(pa.table({
        "customer_id": ["C1", "C2", "C3", ""],
        "signup_date": ["2024-01-01", "2024-01-10", "2024-02-01", "2024-02-01"],
        "channel": ["ads", "organic", "ads", "ads"],
        "referral_code": ["R1", "R2", "R3", "R4"],
        "referred_by": ["", "R1", " ", ""],
    }), raw / "customers.parquet")
    pq.write_table(pa.table({
        "customer_id": ["C1", ""],
        "ts": ["2024-02-01 10:00:00", "2024-02-01 11:00:00"],
        "messages": pa.array([5, 6], pa.int64()),
    }), raw / "usage.parquet")
    ids = {"\n1,": "\nC1,", "\n2,": "\nC2,", "\n3,": "\nC3,"}
    files = {name: BASE[name] for name in ("subscriptions.csv", "charges.csv", "tickets.csv")}
    for name, text in files.items():
        for old, new in ids.items():
            text = text.replace(old, new)
        files[name] = text
    report, interim, q = run(tmp_path, {"customers.csv": None, "usage.csv": None, **files})
    assert report.id_type == "string"
    assert counts(report, "customers") == (4, 3, 1)
    row = quarantined(q, "customers")[4]  # Parquet: line = row index + 1
    assert (row["rule"], row["column"]) == ("missing_value", "customer_id")
    kept = rows(interim / "customers.parquet")
    assert [(r["customer_id"], r["referred_by"]) for r in kept] == [
        ("C1", None), ("C2", "R1"), ("C3", None)]
    assert counts(report, "usage") == (2, 1, 1)
    assert quarantined(q, "usage")[2]["rule"] == "missing_value"


def test_bom_and_crlf(tmp_path):
    customers = "\ufeff" + CUSTOMERS.replace("\n", "\r\n")
    usage = (USAGE + "1,2024-02-01 10:00:00,bad\n").replace("\n", "\r\n")
    report, interim, q = run(tmp_path, {"customers.csv": customers, "usage.csv": usage})
    assert counts(report, "customers") == (3, 3, 0)
    assert counts(report, "usage") == (4, 3, 1)
    assert quarantined(q, "usage")[5]["messages"] == "bad"
    assert rows(interim / "customers.parquet")[0]["customer_id"] == 1


def test_blank_line_is_a_malformed_row_and_later_lines_stay_right(tmp_path):
    usage = USAGE + "\n" + "1,2024-02-01 10:00:00,-3\n\n"  # blank line 5, bad row 6, blank end
    report, _, q = run(tmp_path, {"usage.csv": usage})
    assert counts(report, "usage") == (5, 3, 2)
    lines = quarantined(q, "usage")
    assert (lines[5]["rule"], lines[6]["rule"]) == ("malformed_row", "out_of_range")


def test_line_counts_records_not_physical_lines(tmp_path):
    # a quoted value spanning two physical lines is one record: the documented meaning of
    # `line` (the record number, header = 1), so the bad row on physical line 6 is line 5
    customers = CUSTOMERS.replace("2,2024-01-10,organic,", '2,2024-01-10,"organic\nweb",')
    customers += "4,2024-01-32,ads,R4,\n"
    report, interim, q = run(tmp_path, {"customers.csv": customers})
    assert counts(report, "customers") == (4, 3, 1)
    assert quarantined(q, "customers")[5]["signup_date"] == "2024-01-32"
    assert rows(interim / "customers.parquet")[1]["channel"] == "organic\nweb"


def test_duplicate_column_after_rename(tmp_path):
    with pytest.raises(ContractError, match="usage.csv: column 'messages' appears twice"):
        run(tmp_path, rename={"usage": {"ts": "messages"}})


def test_string_ids(tmp_path):
    files = {
        name: text.replace("\n1,", "\nC1,").replace("\n2,", "\nC2,").replace("\n3,", "\nC3,")
        for name, text in BASE.items()
    }
    files["usage.csv"] += "c1,2024-02-01 10:00:00,5\n"  # ids are case-sensitive strings
    report, interim, q = run(tmp_path, files)
    assert report.id_type == "string"
    assert [r["customer_id"] for r in rows(interim / "customers.parquet")] == ["C1", "C2", "C3"]
    assert quarantined(q, "usage")[5]["rule"] == "unknown_customer"
    assert counts(report, "usage") == (4, 3, 1)


# --------------------------------------------------------------------------- time and calendar


def test_offsets_are_converted_to_the_business_zone(tmp_path):
    usage = """customer_id,ts,messages
1,2024-03-01T10:00:00Z,1
1,2024-02-01 10:00:00+03:30,2
1,2024-02-01 10:00+0330,3
1,2024-02-01T06:30:00+00,4
1,2024-02-01T10:00,5
1,2024-02-01 10:00:00.250,6
"""
    report, interim, _ = run(tmp_path, {"usage.csv": usage}, as_of=dt.date(2024, 4, 1))
    got = {r["messages"]: r["ts"] for r in rows(interim / "usage.parquet")}
    assert got[1] == dt.datetime(2024, 3, 1, 13, 30)
    assert got[2] == got[3] == got[4] == got[5] == dt.datetime(2024, 2, 1, 10, 0)
    assert got[6] == dt.datetime(2024, 2, 1, 10, 0, 0, 250000)
    assert counts(report, "usage") == (6, 6, 0)


def test_persian_and_arabic_indic_digits(tmp_path):
    usage = USAGE + "۱,۲۰۲۴-۰۲-۰۱ ۱۱:۰۰:۰۰,۷\n" + "2,2024-02-02 12:00:00,٣٤\n"
    charges = CHARGES + "1,2024-02-01 12:00:00,۱۲٫۵\n"
    report, interim, _ = run(tmp_path, {"usage.csv": usage, "charges.csv": charges})
    assert counts(report, "usage") == (5, 5, 0)
    kept = {(r["customer_id"], r["ts"]): r["messages"] for r in rows(interim / "usage.parquet")}
    assert kept[(1, dt.datetime(2024, 2, 1, 11))] == 7
    assert kept[(2, dt.datetime(2024, 2, 2, 12))] == 34
    assert sorted(r["amount"] for r in rows(interim / "charges.parquet")) == [10.5, 12.5]


def test_jalali_dates_convert_to_the_right_day(tmp_path):
    files = {
        "customers.csv": "customer_id,signup_date,channel,referral_code,referred_by\n"
        "1,1403-01-01,ads,R1,\n"  # 2024-03-20
        "2,1404-12-30,ads,R2,\n",  # 1404 is not a leap year: no 30 Esfand
        "subscriptions.csv": "customer_id,period_start,period_end,plan,fee,outcome\n"
        "1,1403-01-01,1403-02-01,basic,10,open\n",
        "usage.csv": "customer_id,ts,messages\n1,1403-01-02 10:00:00,5\n1,۱۴۰۳-۰۱-۰۳T09:00:00Z,6\n",
        "charges.csv": "customer_id,ts,amount\n1,1403-12-30 10:00:00,5\n",  # 1403 is leap
        "tickets.csv": "customer_id,opened_at,topic,resolved_at\n",
    }
    report, interim, q = run(tmp_path, files, calendar="jalali", as_of=dt.date(2025, 6, 1),
                             now=dt.datetime(2025, 6, 1), allow_empty=("tickets",))
    assert rows(interim / "customers.parquet")[0]["signup_date"] == dt.date(2024, 3, 20)
    bad = quarantined(q, "customers")[3]
    assert (bad["rule"], bad["column"]) == ("bad_date", "signup_date")
    assert bad["signup_date"] == "1404-12-30"
    sub = rows(interim / "subscriptions.parquet")[0]
    assert (sub["period_start"], sub["period_end"]) == (dt.date(2024, 3, 20), dt.date(2024, 4, 20))
    assert [r["ts"] for r in rows(interim / "usage.parquet")] == [
        dt.datetime(2024, 3, 21, 10, 0), dt.datetime(2024, 3, 22, 12, 30),
    ]
    assert rows(interim / "charges.parquet")[0]["ts"] == dt.datetime(2025, 3, 20, 10, 0)
    assert counts(report, "tickets") == (0, 0, 0)


def test_jalali_macro_agrees_with_jdatetime_day_by_day():
    con = duckdb.connect()
    con.execute(cal.jalali_macros_sql())
    got = dict(
        ((y, m, d), g) for y, m, d, g in con.execute(
            "SELECT y, m, d, jalali_date(y, m, d) FROM range(1395, 1412) a(y), "
            "range(1, 13) b(m), range(1, 32) c(d)"
        ).fetchall()
    )
    for (y, m, d), g in got.items():
        try:
            expected = jdatetime.date(y, m, d).togregorian()
        except ValueError:
            expected = None
        assert g == expected, (y, m, d)
    assert got[(1403, 1, 1)] == dt.date(2024, 3, 20)


def test_as_of_defaults_to_the_day_after_the_latest_valid_event(tmp_path):
    usage = USAGE + "1,2024-07-01 10:00:00,5\n"  # a future row does not move the as-of date
    report, _, q = run(tmp_path, {"usage.csv": usage}, as_of=None)
    assert (report.as_of, report.as_of_source) == (dt.date(2024, 2, 6), "latest event + 1 day")
    assert quarantined(q, "usage")[5]["rule"] == "future_row"


def test_as_of_flag_quarantines_later_rows(tmp_path):
    report, _, q = run(tmp_path, as_of=dt.date(2024, 2, 2))
    assert report.as_of_source == "flag"
    assert counts(report, "usage") == (3, 1, 2)
    assert {r["rule"] for r in quarantined(q, "usage").values()} == {"after_as_of"}
    # on the as-of day itself: signups and period starts are after_as_of too
    report, _, q = run(tmp_path / "day", as_of=dt.date(2024, 2, 1))
    assert counts(report, "customers") == (3, 2, 1)  # customer 3 signed up 2024-02-01
    assert counts(report, "subscriptions") == (4, 2, 2)
    assert report.tables["subscriptions"].by_rule == {"after_as_of": 2}
    assert counts(report, "usage") == (3, 0, 3)  # 2024-02-01 10:00 >= the as-of day start


def test_aware_now_is_converted_to_the_business_zone(tmp_path):
    # 2024-02-02 08:00 UTC = 11:30 Tehran: the 11:00 row is past, the 12:00 row is future
    now = dt.datetime(2024, 2, 2, 8, 0, tzinfo=dt.UTC)
    usage = "customer_id,ts,messages\n1,2024-02-02 11:00:00,1\n1,2024-02-02 12:00:00,2\n"
    report, _, q = run(tmp_path, {"usage.csv": usage}, now=now, as_of=dt.date(2024, 2, 2))
    assert report.tables["usage"].by_rule == {"after_as_of": 1, "future_row": 1}
    assert quarantined(q, "usage")[3]["rule"] == "future_row"


# --------------------------------------------------------------------------- report


def test_max_bad_share_stops_a_broken_export(tmp_path):
    usage = USAGE + "1,2024-02-01 10:00:00,x\n1,2024-02-01 10:00:00,y\n"  # 2 of 5 bad
    with pytest.raises(ContractError) as err:
        run(tmp_path, {"usage.csv": usage}, max_bad_share=0.25)
    msg = str(err.value)
    assert "usage" in msg and "40.0%" in msg and "bad_integer 2" in msg
    report, _, _ = run(tmp_path / "ok", {"usage.csv": usage}, max_bad_share=0.4)
    assert counts(report, "usage") == (5, 3, 2)


def test_customer_quarantined_does_not_count_toward_the_share(tmp_path):
    customers = CUSTOMERS.replace("3,2024-02-01", "3,2024-02-31")  # customer 3 quarantined
    report, _, _ = run(tmp_path, {"customers.csv": customers}, max_bad_share=0.34)
    assert report.tables["usage"].by_rule == {"customer_quarantined": 1}


def test_manifest_is_json_and_reproducible(tmp_path):
    a, _, _ = run(tmp_path / "a", DIRTY)
    b, _, _ = run(tmp_path / "b", DIRTY)
    ma, mb = a.to_manifest("data/raw"), b.to_manifest("data/raw")
    assert json.dumps(ma, sort_keys=True) == json.dumps(mb, sort_keys=True)
    assert ma["as_of"] == "2024-03-01" and ma["id_type"] == "integer"
    assert ma["tables"]["usage"]["md5"] == hashlib.md5(DIRTY["usage.csv"].encode()).hexdigest()
    assert ma["tables"]["usage"]["by_rule"]["duplicate_row"] == 1
    assert str(tmp_path) not in json.dumps(ma)
