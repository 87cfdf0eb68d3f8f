"""Test helpers: a params.yaml variant written into a temp folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from pipeline import artifacts

ROOT = Path(__file__).resolve().parents[2]


def write_params(folder: Path, **changes: dict) -> Path:
    """Copy the repo's params.yaml into `folder`, updating sections (`simulate={...}`)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in changes.items():
        raw[section].update(values)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def recommit(source: Path, target: Path, change: Callable[[Path], None] | None = None) -> None:
    """A new run of the stage that wrote `source`, into `target`: the same files and inputs,
    with `change` applied (a test's way to make a degraded or altered output that the next
    stage accepts as a whole, recorded run)."""
    record = artifacts.StageRecord.read(source)
    with artifacts.stage_output(target, record.stage, record.inputs) as tmp:
        for name in record.files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(source) / name, tmp / name)
        if change is not None:
            change(tmp)
