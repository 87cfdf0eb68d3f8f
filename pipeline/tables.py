"""Reading what ingest wrote: the manifest and the interim tables (never the raw folder)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline import io
from pipeline.params import Paths


class MissingInputError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Manifest:
    as_of: dt.date
    timezone: str
    calendar: str
    tables: tuple[str, ...]  # interim tables present (nps is optional)


def manifest(paths: Paths) -> Manifest:
    if not paths.manifest.exists():
        raise MissingInputError(f"{paths.manifest} not found: run `churn ingest` first")
    raw = io.read_json(paths.manifest)
    present = tuple(name for name, t in raw["tables"].items() if t.get("file"))
    return Manifest(dt.date.fromisoformat(raw["as_of"]), raw["timezone"], raw["calendar"],
                    present)


def interim_files(paths: Paths, m: Manifest) -> dict[str, Path]:
    return {name: Path(paths.interim) / f"{name}.parquet" for name in m.tables}
