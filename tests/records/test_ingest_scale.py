"""Line numbers and byte-identical outputs on a file DuckDB reads in several chunks/threads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from records.config import IngestConfig
from records.ingest import ingest

from .test_ingest import AS_OF, NOW, counts, quarantined, write_raw

N = 300_000  # data rows: many DuckDB vectors and row groups, several CSV buffers
SPECIAL = {
    100: "1,2024-01-20 00:01:40,-1",  # out_of_range
    150_000: "2,2024-01-21 17:39:58,1,surplus",  # malformed_row (a field too many)
    250_000: None,  # filled below: an exact copy of line 2
    299_990: "1,2024-01-23 11:19:48,not-a-number",  # bad_integer, near the end
}


def usage_csv() -> str:
    start = dt.datetime(2024, 1, 20)
    lines = ["customer_id,ts,messages"]
    for line in range(2, N + 2):
        ts = start + dt.timedelta(seconds=line)
        lines.append(f"{1 + line % 2},{ts:%Y-%m-%d %H:%M:%S},{line % 50}")
    lines[250_000 - 1] = lines[2 - 1]
    for line, text in SPECIAL.items():
        if text is not None:
            lines[line - 1] = text
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("scale")
    text = usage_csv()
    out = []
    for name in ("a", "b"):
        raw = write_raw(base / name, {"usage.csv": text})
        interim, quarantine = base / name / "interim", base / name / "quarantine"
        interim.mkdir()
        quarantine.mkdir()
        report = ingest(
            raw, interim, quarantine,
            IngestConfig(timezone="Asia/Tehran", calendar="gregorian", as_of=AS_OF,
                         max_bad_share=0.01),
            now=NOW,
        )
        out.append((report, interim, quarantine))
    return out


def test_line_numbers_survive_chunks_and_malformed_lines(two_runs):
    report, _, q = two_runs[0]
    assert counts(report, "usage") == (N, N - 4, 4)
    lines = quarantined(q, "usage")
    assert {line: r["rule"] for line, r in lines.items()} == {
        100: "out_of_range",
        150_000: "malformed_row",
        250_000: "duplicate_row",
        299_990: "bad_integer",
    }
    assert lines[250_000]["reason"] == "exact copy of line 2"
    assert lines[299_990]["messages"] == "not-a-number"
    assert lines[100]["ts"] == "2024-01-20 00:01:40"


def test_interim_is_sorted(two_runs):
    _, interim, _ = two_runs[0]
    path = interim / "usage.parquet"
    unsorted = duckdb.sql(
        f"SELECT count(*) FROM (SELECT customer_id, ts, lag(customer_id) OVER () AS pc, "
        f"lag(ts) OVER () AS pt FROM read_parquet('{path}')) "
        f"WHERE pc > customer_id OR (pc = customer_id AND pt > ts)"
    ).fetchall()[0][0]
    assert unsorted == 0


def test_two_runs_write_identical_bytes(two_runs):
    (ra, ia, qa), (rb, ib, qb) = two_runs
    files = sorted(p.name for p in ia.iterdir())
    assert files == ["charges.parquet", "customers.parquet", "subscriptions.parquet",
                     "tickets.parquet", "usage.parquet"]
    for folder_a, folder_b in ((ia, ib), (qa, qb)):
        for name in files:
            assert Path(folder_a / name).read_bytes() == Path(folder_b / name).read_bytes(), name
    assert ra.to_manifest("raw") == rb.to_manifest("raw")
