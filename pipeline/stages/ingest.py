"""Stage `ingest`: validate the export against the contract into interim tables + quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from pipeline import io
from pipeline.params import DataParams, Paths
from records.ingest import IngestReport, ingest


def run(
    data: DataParams,
    paths: Paths,
    raw: Path,
    as_of: dt.date | None,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Interim and quarantine folders are replaced whole, or (on any error) left as they were."""
    with io.atomic_dir(Path(paths.quarantine)) as quarantine, \
            io.atomic_dir(Path(paths.interim)) as interim:
        report = ingest(
            raw, interim, quarantine, timezone=data.timezone, calendar=data.calendar,
            as_of=as_of, max_bad_share=data.max_bad_share, rename=data.rename, now=now,
            progress=progress,
        )
        io.write_json(report.to_manifest(str(raw)), interim / paths.manifest.name)
    return report
