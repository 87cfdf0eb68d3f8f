"""Stage `ingest`: validate the export against the contract into interim tables + quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from common.errors import UserError
from pipeline import artifacts, io, tables
from pipeline.params import Paths
from records import cut as records_cut
from records.config import IngestConfig
from records.ingest import IngestReport, ingest

STAGE = "ingest"


def run(
    config: IngestConfig,
    paths: Paths,
    raw: Path,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """The interim folder (tables, quarantine, manifest) is replaced whole, or (on any error)
    left as it was."""
    artifacts.claim(Path(paths.interim), STAGE)
    with artifacts.stage_output(Path(paths.interim), STAGE) as tmp:
        quarantine = tmp / paths.quarantine.relative_to(paths.interim)
        quarantine.mkdir()
        report = ingest(raw, tmp, quarantine, config, now=now, progress=progress)
        io.write_json(report.to_manifest(str(raw)), tmp / paths.manifest.name)
    return report


def cut(paths: Paths, target: Path, day: dt.date, grace_days: int) -> dict:
    """The interim folder as an export taken on `day` would have made it (records.cut), as a
    stage folder of its own: what a backtest trains on. Returns its manifest."""
    source = artifacts.read(*tables.inputs(paths, "interim"))
    m = tables.manifest(paths)
    if day > m.as_of:
        raise UserError(f"cannot cut the export of {m.as_of} at {day}: a later day")
    full = io.read_json(paths.manifest)
    with artifacts.stage_output(Path(target), STAGE, {"uncut": source}) as tmp:
        (tmp / paths.quarantine.relative_to(paths.interim)).mkdir()
        rows = records_cut.cut(Path(paths.interim), tmp, day, grace_days, m.tables)
        manifest = full | {
            "as_of": day.isoformat(), "as_of_source": f"cut of the {m.as_of} export",
            "tables": {name: t | {"md5": None, "rows_in": rows.get(name, 0),
                                  "kept": rows.get(name, 0), "quarantined": 0, "by_rule": {}}
                       for name, t in full["tables"].items()}}
        io.write_json(manifest, tmp / paths.manifest.name)
    return manifest


def render(report: IngestReport, console, *, raw: Path, paths: Paths) -> None:
    """The one-screen summary: per table, rows in, kept, quarantined by rule, ignored columns."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"ingest {raw} -> {paths.interim} (as of {report.as_of})"))
    for col in ("table", "file", "rows in", "kept", "quarantined", "rules", "ignored columns"):
        table.add_column(col, justify="right" if col in ("rows in", "kept", "quarantined") else "left")
    for name, t in report.tables.items():
        rules = ", ".join(f"{k} {v:,}" for k, v in sorted(t.by_rule.items(), key=lambda kv: -kv[1]))
        table.add_row(name, escape(t.source or "(absent)"), f"{t.rows_in:,}", f"{t.kept:,}",
                      f"{t.quarantined:,}", rules or "-",
                      escape(", ".join(t.extra_columns)) or "-")
    console.print(table)
    console.print(
        f"as-of {report.as_of} ({report.as_of_source}); time zone {report.timezone}; "
        f"calendar {report.calendar}; ids {report.id_type}. "
        f"Quarantined rows: {paths.quarantine}/<table>.parquet"
    )
