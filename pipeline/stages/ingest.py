"""Stage `ingest`: validate the export against the contract into interim tables + quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from pipeline import artifacts, io
from pipeline.params import Paths
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
    with artifacts.stage_output(Path(paths.interim), STAGE) as tmp:
        quarantine = tmp / paths.quarantine.relative_to(paths.interim)
        quarantine.mkdir()
        report = ingest(raw, tmp, quarantine, config, now=now, progress=progress)
        io.write_json(report.to_manifest(str(raw)), tmp / paths.manifest.name)
    return report
