"""params.yaml: loaded once, typed, and loud about every mistake."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from pipeline.params import ParamsError, load_params
from tests.pipeline.helpers import ROOT, write_params


def test_repo_params_load(params):
    assert params.labels.early_life_days == 90
    assert isinstance(params.simulate.start, dt.date)
    assert params.paths.raw_is_simulated


def test_unknown_key_names_file_and_key(tmp_path):
    path = write_params(tmp_path, labels={"horizon_dayz": 30})
    with pytest.raises(ParamsError, match=re.escape(f"{path}: labels: unknown key(s) ['horizon_dayz']")):
        load_params(path)


def test_missing_key_and_wrong_type(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    del raw["labels"]["grace_days"]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match="labels.grace_days: missing"):
        load_params(tmp_path / "a.yaml")
    path = write_params(tmp_path, data={"calendar": "julian"})
    with pytest.raises(ParamsError, match=r"data.calendar: 'julian' is not one of"):
        load_params(path)
    path = write_params(tmp_path, simulate={"customers": "many"})
    with pytest.raises(ParamsError, match=r"simulate.customers: expected int, got 'many'"):
        load_params(path)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")


def _keys(tree, prefix=""):
    for k, v in tree.items():
        yield prefix + k
        if isinstance(v, dict):
            yield from _keys(v, prefix + k + ".")


def test_every_param_a_stage_declares_exists():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    known = set(_keys(yaml.safe_load((ROOT / "params.yaml").read_text())))
    declared = [p for s in stages.values() for p in s.get("params", [])]
    assert declared and set(declared) <= known


def test_every_committed_world_loads_as_a_params_file():
    """worlds/*.yaml are whole params files (`--params worlds/b.yaml` on every command)."""
    for path in sorted((ROOT / "worlds").glob("*.yaml")):
        p = load_params(path)
        assert p.paths.weekly.startswith(f"data/world-{path.stem}/"), path


@pytest.mark.parametrize(("labels", "message"), [
    ({"min_tenure_days": 0}, "labels.min_tenure_days: must be at least 1 day"),
    ({"min_tenure_days": 120}, "labels.early_life_days: 90 is before min_tenure_days 120"),
    ({"grace_days": 120}, "labels.early_life_days: 90 is before grace_days 120"),
])
def test_the_first_points_settings_are_checked(tmp_path, labels, message):
    """min_tenure_days may be shorter than grace_days now (a first run has points from day 1);
    a returning customer's early-life point still needs early_life_days >= grace_days."""
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(write_params(tmp_path, labels=labels))
    assert load_params(write_params(tmp_path, labels={"min_tenure_days": 1, "grace_days": 30}))
