"""kill -9 at every step of every stage's commit: the outputs stay one whole run (the
previous one or the new one), readable, and the next run succeeds and leaves no temp files.

The kill comes from the product's own test hook (CHURN_KILL_AT names the step), so each step
is hit every time, not by timing luck.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import artifacts
from pipeline.params import load_params
from tests.pipeline.helpers import write_params

pytestmark = pytest.mark.slow

# stage -> the paths key of its output folder
STAGES = {"simulate": "sim", "ingest": "interim", "observe": "observations",
          "features": "features", "train": "models", "evaluate": "evaluation",
          "score": "score"}
FLAGS = {"score": ["--pipeline"]}  # as dvc.yaml runs it (the weekly job commits the same way)


def _churn(cwd: Path, stage: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != artifacts.KILL_AT}
    if kill_at:
        env[artifacts.KILL_AT] = kill_at
    return subprocess.run([sys.executable, "-m", "pipeline.cli", stage, *FLAGS.get(stage, [])],
                          cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A small world through every stage once: the 'previous run' each kill must preserve."""
    root = tmp_path_factory.mktemp("kill")
    write_params(root, simulate={"customers": 600, "days": 500},
                 evaluate={"resamples": 20, "shap_sample": 200})
    for stage in STAGES:
        done = _churn(root, stage)
        assert done.returncode == 0, done.stderr
    return root


def _state(folder: Path) -> tuple[str, dict]:
    record = artifacts.StageRecord.read(folder)
    assert record is not None, f"{folder}: no record after the kill"
    return record.digest, record.files


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.glob(f".{folder.name}.*.tmp"))


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_at_every_commit_step(workspace, stage):
    paths = load_params(workspace / "params.yaml").paths
    out = workspace / getattr(paths, STAGES[stage])
    old, _ = _state(out)
    seen = {old}
    for step in artifacts.STEPS:
        killed = _churn(workspace, stage, kill_at=step)
        assert killed.returncode == -9, (step, killed.stderr[-2000:])
        now, files = _state(out)
        # old or new, whole: every recorded file is there with its recorded hash
        artifacts.read(artifacts.Input(STAGES[stage], out, stage))
        if step in ("begin", "written", "recorded"):
            assert now == old, f"{stage}: a kill at {step!r} changed the output"
        seen.add(now)
    assert len(seen) == 1  # the stages are deterministic: every new run equals the old one
    done = _churn(workspace, stage)
    assert done.returncode == 0, done.stderr
    assert _leftovers(out) == []
    assert _state(out)[0] == old
