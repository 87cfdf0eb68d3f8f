"""The rule declaration, the ingest config, and the export-level errors (empty tables, an
as-of outside the export, floating-point ids)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.errors import ConfigError, UserError
from records.config import IngestConfig
from records.contract import RULES, TABLES
from records.contract_doc import render
from records.ingest import ContractError, ingest, row_rules, table_rules

from .test_ingest import CUSTOMERS, NOW, counts, run, write_raw

# --------------------------------------------------------------------------- rules, declared once


def test_every_rule_the_code_emits_is_declared_and_vice_versa():
    emitted = set(row_rules.EMITS) | set(table_rules.EMITS)
    assert emitted == set(RULES)
    assert set(row_rules.EMITS) == {r.id for r in RULES.values() if r.scope == "row"}


def test_row_rules_are_evaluated_in_declared_priority_order():
    for t in TABLES.values():
        priorities = [RULES[rule].priority for _, rule, _ in row_rules.local_rules(t, NOW)]
        assert priorities == sorted(priorities), t.name


def test_rules_are_declared_in_priority_order_and_rendered_from_the_declaration():
    declared = list(RULES.values())
    assert [r.priority for r in declared] == sorted(r.priority for r in declared)
    doc = render()
    positions = [doc.index(f"| `{r.id}` |") for r in declared]
    assert positions == sorted(positions)
    for r in declared:
        assert r.meaning in doc


def test_contract_error_is_a_user_error():
    assert issubclass(ContractError, UserError)


# --------------------------------------------------------------------------- config

GOOD = dict(timezone="Asia/Tehran", calendar="gregorian", as_of=None, max_bad_share=0.05)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone 'Mars/Olympus'"),
        ({"calendar": "julian"}, "calendar", "gregorian, jalali"),
        ({"max_bad_share": 1.5}, "max_bad_share", "between 0 and 1"),
        ({"max_bad_share": -0.1}, "max_bad_share", "between 0 and 1"),
        ({"rename": {"sms": {"a": "b"}}}, "rename", "unknown table(s) sms; the tables are customers"),
        ({"allow_empty": ("nps", "usages")}, "allow_empty", "unknown table(s) usages"),
        ({"max_as_of_gap_days": -1}, "max_as_of_gap_days", "0 or more days, or null"),
    ],
)
def test_config_range_checks_name_the_key(change, key, words):
    with pytest.raises(ConfigError) as err:
        IngestConfig(**{**GOOD, **change})
    assert err.value.key == key
    assert words in str(err.value)


def test_config_defaults_and_frozen():
    c = IngestConfig(**GOOD)
    assert (c.rename, c.allow_empty, c.max_as_of_gap_days) == ({}, (), 365)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.timezone = "UTC"  # type: ignore[misc]


# --------------------------------------------------------------------------- empty tables

HEADER_ONLY_USAGE = {"usage.csv": "customer_id,ts,messages\n"}


def test_header_only_required_table_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError) as err:
        run(tmp_path, HEADER_ONLY_USAGE)
    msg = str(err.value)
    assert msg.startswith("usage.csv: ")
    assert "has no rows" in msg and "data.allow_empty: [usage]" in msg


def test_allowed_empty_required_table_is_reported_with_zero_rows(tmp_path):
    report, interim, q = run(tmp_path, HEADER_ONLY_USAGE, allow_empty=("usage",))
    assert counts(report, "usage") == (0, 0, 0)
    assert report.tables["usage"].present
    assert pq.read_table(interim / "usage.parquet").num_rows == 0
    assert pq.read_table(q / "usage.parquet").num_rows == 0


def test_optional_table_present_but_empty_differs_from_absent(tmp_path):
    empty, _, _ = run(tmp_path / "empty", {"nps.csv": "customer_id,ts,score\n"})
    absent, _, _ = run(tmp_path / "absent")
    assert counts(empty, "nps") == counts(absent, "nps") == (0, 0, 0)
    assert (empty.tables["nps"].present, absent.tables["nps"].present) == (True, False)
    m_empty = json.loads(json.dumps(empty.to_manifest("raw")))["tables"]["nps"]
    m_absent = json.loads(json.dumps(absent.to_manifest("raw")))["tables"]["nps"]
    assert (m_empty["file"], m_empty["rows_in"], m_empty["md5"] is not None) == ("nps.csv", 0, True)
    assert (m_absent["file"], m_absent["md5"]) == (None, None)


# --------------------------------------------------------------------------- as-of outside the export


@pytest.mark.parametrize("as_of", [dt.date(2023, 6, 1), dt.date(2024, 1, 1)])
def test_as_of_on_or_before_the_first_day_is_a_contract_error(tmp_path, as_of):
    with pytest.raises(ContractError) as err:
        run(tmp_path, as_of=as_of)
    msg = str(err.value)
    assert f"as-of date {as_of} is not after the export's first day 2024-01-01" in msg
    assert "data.as_of: null" in msg and "2024-02-06" in msg  # the day after the latest event


def test_as_of_long_after_the_latest_event_needs_the_gap_param(tmp_path):
    # latest event: the ticket at 2024-02-05 09:00
    with pytest.raises(ContractError) as err:
        run(tmp_path / "far", as_of=dt.date(2025, 2, 5), now=dt.datetime(2025, 6, 1))
    msg = str(err.value)
    assert "366 days after the export's latest event (2024-02-05)" in msg
    assert "data.max_as_of_gap_days" in msg
    report, _, _ = run(tmp_path / "edge", as_of=dt.date(2025, 2, 4), now=dt.datetime(2025, 6, 1))
    assert report.as_of == dt.date(2025, 2, 4)  # 365 days: allowed
    report, _, _ = run(tmp_path / "nolimit", as_of=dt.date(2026, 1, 1),
                       now=dt.datetime(2026, 6, 1), max_as_of_gap_days=None)
    assert counts(report, "usage") == (3, 3, 0)


# --------------------------------------------------------------------------- floating-point ids


def test_float_customer_id_in_parquet_names_the_file_column_and_type(tmp_path):
    raw = write_raw(tmp_path, {"customers.csv": None})
    lines = [line.split(",") for line in CUSTOMERS.strip().splitlines()[1:]]
    pq.write_table(pa.table({
        "customer_id": pa.array([float(r[0]) for r in lines], pa.float64()),
        "signup_date": [r[1] for r in lines],
        "channel": [r[2] for r in lines],
        "referral_code": [r[3] for r in lines],
        "referred_by": [r[4] or None for r in lines],
    }), raw / "customers.parquet")
    with pytest.raises(ContractError) as err:
        run(tmp_path, {"customers.csv": None})
    msg = str(err.value)
    assert msg.startswith("customers.parquet: column 'customer_id' is typed DOUBLE")
    assert "integers (BIGINT) or strings (VARCHAR)" in msg
    assert "subscriptions" not in msg


def test_ingest_takes_the_config_positionally(tmp_path):
    raw = write_raw(tmp_path, {})
    (tmp_path / "i").mkdir()
    (tmp_path / "q").mkdir()
    report = ingest(raw, tmp_path / "i", tmp_path / "q", IngestConfig(**GOOD), now=NOW)
    assert report.as_of_source == "latest event + 1 day"
