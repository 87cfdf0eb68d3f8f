"""Every notebook runs top to bottom on real pipeline outputs and its assertions hold.

The outputs are the session's built world (`built`, `trained`) plus what the notebooks read
beyond it: the `score` stage's folder (the weekly list), the `report` stage's folder (the
retention figures) and a temporary MLflow store in which `register` logged two train runs of
that world and `report --track` one report run (the model review)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from unittest import mock

import nbformat
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient

from pipeline.params import Paths, json_ready

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CANDIDATE_TREES = 5  # the second registered model: the split model cut to its first trees


@pytest.fixture(scope="module")
def scored(params, built, trained):
    """The pipeline's scoring of the built world (the `score` stage), for the list notebook."""
    from pipeline.stages import score

    score.run_pipeline(params.score, params.report, built, "churn")
    return built


@pytest.fixture(scope="module")
def reported(params, scored, tmp_path_factory) -> Paths:
    """The `report` stage on the built world, into a folder of this module's (the built paths
    leave paths.report at the repo's own reports/retention)."""
    from pipeline.stages import report

    paths = dataclasses.replace(scored, report=str(tmp_path_factory.mktemp("report")))
    report.run(params.report, params.labels, paths, log=lambda m: None)
    return paths


@pytest.fixture(scope="module")
def registry(params, reported, _template_db, tmp_path_factory) -> tuple[str, Paths]:
    """A temporary MLflow store as `dvc repro` leaves it after two trainings: the built world's
    model registered (champion: there was none), then a weaker candidate (its split model cut
    to its first trees, its test predictions made again, evaluated again) registered as
    challenger without moving the champion, and the retention report tracked. Returns the
    store's URI and the paths of the last training, whose evaluation folder the model review
    compares with MLflow."""
    import mlflow

    from models import lgbm
    from models.classifier import ChurnClassifier
    from pipeline import tables
    from pipeline.stages import evaluate, register, report
    from tests.pipeline.helpers import recommit

    root = tmp_path_factory.mktemp("mlflow")
    db = root / "mlflow.db"
    shutil.copy(_template_db, db)
    uri = f"sqlite:///{db}"
    first = dataclasses.replace(reported, registered=str(root / "registered.json"))
    second = dataclasses.replace(first, models=str(root / "models"),
                                 evaluation=str(root / "evaluation"))
    split = ChurnClassifier.load(first.split_model)
    weaker = ChurnClassifier(lgbm.truncate(split.booster, CANDIDATE_TREES), split.calibrator,
                             split.contract)

    def swap(folder: Path) -> None:  # the candidate's split model and its test predictions
        shutil.rmtree(folder / second.split_model.name)
        weaker.save(folder / second.split_model.name)
        pred = pd.read_parquet(folder / second.predictions.name)
        test = pred[["customer_id", "t"]].merge(pd.read_parquet(first.features_table),
                                                on=["customer_id", "t"], how="left")
        pred["p_lightgbm_raw"], pred["p_lightgbm"] = weaker.raw(test), weaker.predict_proba(test)
        pred.to_parquet(folder / second.predictions.name, index=False)

    recommit(Path(first.models), Path(second.models), swap)
    quick = dataclasses.replace(params.evaluate, resamples=50, shap_sample=500)
    evaluate.run(quick, second, log=lambda m: None, offer=params.score)
    # MLflow's set_experiment exports MLFLOW_EXPERIMENT_ID: keep the environment as it was
    with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": uri, "DVC_ROOT": str(root)}):
        os.environ.pop("DVC_EXP_NAME", None)
        champion = register.run(dataclasses.replace(params, paths=first), uri, log=lambda m: None)
        challenger = register.run(dataclasses.replace(params, paths=second), uri,
                                  log=lambda m: None)
        report.track(report.folder(second, params.report.period), uri, params.mlflow.experiment,
                     as_of=tables.manifest(second).as_of.isoformat(), log=lambda m: None)
    mlflow.set_tracking_uri(None)
    assert champion.decision.promote and not challenger.decision.promote, challenger.decision
    return uri, second


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, params, registry, tmp_path, monkeypatch):
    uri, paths = registry
    raw = json_ready(dataclasses.asdict(params))
    raw["paths"] = json_ready(dataclasses.asdict(paths))
    settings = tmp_path / "params.yaml"
    settings.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("CHURN_PARAMS", str(settings))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # never the project's own store
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure shown"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
