"""Every notebook runs top to bottom on real pipeline outputs and its assertions hold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from pipeline.params import json_ready

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def scored(params, built, trained):
    """The pipeline's scoring of the built world (the `score` stage), for the list notebook."""
    from pipeline.stages import score

    score.run_pipeline(params.score, params.report, built, "churn")
    return built


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, params, scored, tmp_path, monkeypatch):
    built = scored
    raw = json_ready(dataclasses.asdict(params))
    raw["paths"] = json_ready(dataclasses.asdict(built))
    settings = tmp_path / "params.yaml"
    settings.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("CHURN_PARAMS", str(settings))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure shown"


def test_there_are_notebooks():
    assert NOTEBOOKS
