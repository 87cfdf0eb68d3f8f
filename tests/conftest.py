"""Shared fixtures: the repo's own params and a small simulated world built once per session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.params import Params, load_params
from pipeline.stages import simulate as simulate_stage

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


def build_world(params: Params, out: Path, **overrides) -> Path:
    sim = dataclasses.replace(params.simulate, **overrides)
    simulate_stage.run(sim, params.labels, out)
    return out


@pytest.fixture(scope="session")
def world(params, tmp_path_factory) -> Path:
    """The default world at 4,000 customers: big enough for the statistical tests."""
    return build_world(params, tmp_path_factory.mktemp("world"), customers=4000)


@pytest.fixture(scope="session")
def tiny_world(params, tmp_path_factory) -> Path:
    """A few hundred customers over a shorter span, for plumbing tests."""
    return build_world(params, tmp_path_factory.mktemp("tiny"), customers=400, days=400)
