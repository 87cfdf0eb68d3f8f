"""What ingest reports: per table rows in / kept / quarantined by rule, and the manifest."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from records.contract import RULES
from records.ingest.errors import ContractError

# not the table's own fault: its customer's (customers' rows) or the as-of date's
EXCLUDED_FROM_SHARE = ("customer_quarantined", "after_as_of")


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

    @property
    def present(self) -> bool:
        """The file is there (possibly with no rows: rows_in 0); False = optional, absent."""
        return self.source is not None


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



def table_report(
    name: str, file: str, *, rows_in: int, kept: int, by_rule: dict[str, int],
    extra: list[str], md5: str, max_bad_share: float,
) -> TableReport:
    """The table's report, once its counts reconcile and its bad share is acceptable."""
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
    if share > max_bad_share:
        top = sorted(own.items(), key=lambda rn: (-rn[1], rn[0]))[:3]
        raise ContractError(
            f"{file}: {share:.1%} of the {rows_in:,} rows of table '{name}' are bad "
            f"(max_bad_share {max_bad_share:.1%}); top rules: "
            f"{', '.join(f'{r} {n:,}' for r, n in top)}. The export looks broken, not "
            f"the rows: fix the export (or its renames / calendar / time zone)"
        )
    return TableReport(
        table=name, source=file, rows_in=rows_in, kept=kept, quarantined=quarantined,
        by_rule=by_rule, extra_columns=list(extra), md5=md5,
    )


def summary(report: TableReport) -> str:
    """One progress line: `usage: 3 rows, 2 kept, 1 quarantined (bad_integer 1)`."""
    detail = ", ".join(f"{r} {n:,}" for r, n in report.by_rule.items())
    return (
        f"{report.table}: {report.rows_in:,} rows, {report.kept:,} kept, "
        f"{report.quarantined:,} quarantined" + (f" ({detail})" if detail else "")
    )
