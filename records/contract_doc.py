"""The input contract as a Markdown page (docs/contract.md), generated from records.contract."""

from __future__ import annotations

from records.contract import RULES, SCOPE_TEXT, TABLES

KIND_TEXT = {
    "id": "id (string or integer)",
    "date": "date (YYYY-MM-DD)",
    "timestamp": "timestamp (YYYY-MM-DD HH:MM[:SS], optional offset)",
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "enum": "one of",
}


def _range(c) -> str:
    parts = []
    if c.enum:
        parts.append(", ".join(c.enum))
    if c.min_value is not None:
        parts.append(f"{'>' if c.min_exclusive else '>='} {c.min_value:g}")
    if c.max_value is not None:
        parts.append(f"<= {c.max_value:g}")
    return "; ".join(parts)


def render() -> str:
    lines = [
        "# Input contract",
        "",
        "Generated from `records/contract.py` by `churn contract`; do not edit by hand.",
        "",
        "One file per table in the raw folder (`paths.raw`): `<table>.csv`, `<table>.csv.gz` or",
        "`<table>.parquet`. Column names can be mapped onto these with `data.rename` in",
        "`params.yaml`; extra columns are ignored and listed in the ingest summary. Dates may be",
        "Gregorian or Jalali (`data.calendar`); timestamps with an offset are converted to",
        "`data.timezone`, naive ones are taken as already in it. Persian and Arabic-Indic digits",
        "are accepted. Empty means missing. A required table's file must hold rows (list the",
        "exceptions in `data.allow_empty`); an optional file may be absent or empty.",
        "",
    ]
    for t in TABLES.values():
        lines += [f"## `{t.name}`{' (optional file)' if t.optional else ''}", "", t.meaning + ".", ""]
        if t.unique:
            keys = "; ".join(" + ".join(k) for k in t.unique)
            lines += [f"Unique: {keys} (the first occurrence in file order is kept).", ""]
        lines += ["| column | type | required | allowed | meaning |", "|---|---|---|---|---|"]
        for c in t.columns:
            lines.append(
                f"| `{c.name}` | {KIND_TEXT[c.kind]} | {'yes' if c.required else 'no'} "
                f"| {_range(c)} | {c.meaning} |"
            )
        lines.append("")
    lines += [
        "## Quarantine rules",
        "",
        "A bad row goes to `<paths.quarantine>/<table>.parquet` with its source file, line,",
        "column, rule and a readable reason; for every table rows in = kept + quarantined.",
        "A row carries exactly one rule: the failing one with the smallest priority (rules",
        "sharing a priority are decided by the contract's column order).",
        "",
        "| priority | rule | judged on | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.priority} | `{r.id}` | {SCOPE_TEXT[r.scope]} | {r.meaning} |"
        for r in sorted(RULES.values(), key=lambda r: r.priority)
    ]
    return "\n".join(lines) + "\n"
