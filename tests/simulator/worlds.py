"""The committed worlds as `SimulateConfig`s, read straight from their YAML (no pipeline), so
the simulator's own tests do not depend on the params loader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from features.config import LabelConfig
from simulator.config import ChannelConfig, PlanConfig, SimulateConfig, WorldConfig

ROOT = Path(__file__).resolve().parents[2]
WORLDS = ("params.yaml", "worlds/b.yaml", "worlds/c.yaml", "worlds/drift.yaml")


def _raw(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def world_config(raw: dict) -> WorldConfig:
    return WorldConfig(**{**raw, "plans": tuple(PlanConfig(**p) for p in raw["plans"]),
                          "channels": tuple(ChannelConfig(**c) for c in raw["channels"])})


def simulate_config(path: str = "params.yaml") -> SimulateConfig:
    raw = _raw(path)["simulate"]
    return SimulateConfig(**{**raw, "start": dt.date.fromisoformat(str(raw["start"])),
                             "world": world_config(raw["world"])})


def label_config(path: str = "params.yaml") -> LabelConfig:
    return LabelConfig(**_raw(path)["labels"])
