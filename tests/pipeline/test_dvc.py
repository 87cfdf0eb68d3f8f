"""dvc.yaml against the code: each stage depends on exactly the code its command runs, so a
change to any module reruns the stages that use it and only those."""

from __future__ import annotations

import pytest
import yaml

from tests.imports import ROOT, closure

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _code_deps(stage: str) -> list[str]:
    return [d for d in STAGES[stage]["deps"] if not str(d).startswith("${")]


def _runs(stage: str) -> set[str]:
    files = closure(f"pipeline.stages.{stage}") | closure("pipeline.cli", top_level_only=True)
    return {path.relative_to(ROOT).as_posix() for path in files}


def _covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep.rstrip("/") + "/")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_are_the_code_the_stage_runs(stage):
    deps, runs = _code_deps(stage), _runs(stage)
    missing = sorted(f for f in runs if not any(_covers(d, f) for d in deps))
    unused = sorted(d for d in deps if not any(_covers(d, f) for f in runs))
    assert not missing, f"{stage}: add to its deps in dvc.yaml: {missing}"
    assert not unused, f"{stage}: deps it never runs (remove them): {unused}"


def test_each_stage_is_one_command():
    for name, stage in STAGES.items():
        assert stage["cmd"] == f"churn {name}" or stage["cmd"].startswith(f"churn {name} --")
        assert (ROOT / "pipeline" / "stages" / f"{name}.py").is_file()
