"""Test helpers: a params.yaml variant written into a temp folder."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_params(folder: Path, **changes: dict) -> Path:
    """Copy the repo's params.yaml into `folder`, updating sections (`simulate={...}`)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in changes.items():
        raw[section].update(values)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
