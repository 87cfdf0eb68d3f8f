"""Shared fixtures: the repo's own params and a small simulated world built once per session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.params import Params, Paths, load_params
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


def build_pipeline(params: Params, world: Path, out: Path) -> Paths:
    """ingest -> observe -> features on a simulated world, into `out` (stage functions)."""
    from pipeline.stages import features as features_stage
    from pipeline.stages import ingest as ingest_stage
    from pipeline.stages import observe as observe_stage

    paths = dataclasses.replace(
        params.paths, raw=str(world / "export"), sim=str(world),
        interim=str(out / "interim"), quarantine=str(out / "quarantine"),
        processed=str(out / "processed"))
    ingest_stage.run(params.data, paths, Path(paths.raw), None)
    observe_stage.run(params.labels, paths, paths.sim_truth / "truth.parquet")
    features_stage.run(params.features, params.labels, paths)
    return paths


@pytest.fixture(scope="session")
def built(params, world, tmp_path_factory) -> Paths:
    """The 4,000-customer world through ingest, observe and features."""
    return build_pipeline(params, world, tmp_path_factory.mktemp("built"))
