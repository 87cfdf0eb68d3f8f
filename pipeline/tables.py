"""Reading what the stages wrote: the ingest manifest and the interim tables (never the raw
folder), each stage output checked against its record (pipeline.artifacts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline import artifacts, io
from pipeline.params import Paths


@dataclass(frozen=True)
class Manifest:
    as_of: dt.date
    timezone: str
    calendar: str
    tables: tuple[str, ...]  # interim tables present (nps is optional)
    md5: dict[str, str]  # table -> md5 of the raw file it was ingested from


# each stage folder (its paths key) and the command that writes it
WRITER = {"sim": "simulate", "interim": "ingest", "observations": "observe",
          "features": "features", "models": "train", "evaluation": "evaluate"}


def inputs(paths: Paths, *names: str) -> list[artifacts.Input]:
    """The stage folders `paths.<name>` as inputs to check (`artifacts.read_all(*inputs(...))`)."""
    return [artifacts.Input(name, Path(getattr(paths, name)), WRITER[name]) for name in names]


def manifest(paths: Paths) -> Manifest:
    """The manifest of the interim folder (call after the folder's record was checked)."""
    raw = io.read_json(paths.manifest)
    present = tuple(name for name, t in raw["tables"].items() if t.get("file"))
    return Manifest(dt.date.fromisoformat(raw["as_of"]), raw["timezone"], raw["calendar"],
                    present, {name: raw["tables"][name]["md5"] for name in present})


def interim_files(paths: Paths, m: Manifest) -> dict[str, Path]:
    return {name: Path(paths.interim) / f"{name}.parquet" for name in m.tables}


def simulated_truth(paths: Paths, m: Manifest) -> tuple[Path, artifacts.StageRecord] | None:
    """The simulator's truth, only when the ingested export is exactly the simulated export
    beside it (every raw file's md5 equal to the one the simulator wrote)."""
    record = artifacts.StageRecord.read(Path(paths.sim))
    if record is None or record.stage != WRITER["sim"]:
        return None
    written = {Path(name).name.split(".")[0]: digest for name, digest in record.files.items()
               if name.startswith("export/")}
    if not m.md5 or written != m.md5:
        return None
    # ingest already hashed the export files it read: only the truth itself is checked here
    truth = Path(paths.sim_truth) / "truth.parquet"
    name = truth.relative_to(paths.sim).as_posix()
    if not truth.is_file() or artifacts.md5(truth) != record.files.get(name):
        return None
    return truth, record
