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


def stage_input(paths: Paths, name: str) -> artifacts.Input:
    """The stage folder `paths.<name>` as an input to check (pipeline.artifacts.read_all)."""
    return artifacts.Input(name, Path(getattr(paths, name)), WRITER[name])


def interim(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "interim")


def observations(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "observations")


def features(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "features")


def models(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "models")


def evaluation(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "evaluation")


def simulated(paths: Paths) -> artifacts.Input:
    return stage_input(paths, "sim")


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
    try:
        record = artifacts.read(simulated(paths))
    except artifacts.StaleInputError:
        return None
    written = {Path(name).name.split(".")[0]: digest for name, digest in record.files.items()
               if name.startswith("export/")}
    if not m.md5 or written != m.md5:
        return None
    truth = Path(paths.sim_truth) / "truth.parquet"
    return (truth, record) if truth.is_file() else None
