"""A real MLflow store in a temp folder: one run per model, the registry, the champion rule."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models import lgbm
from models.classifier import ChurnClassifier
from models.pyfunc import load
from pipeline import artifacts, tracking
from pipeline.stages import evaluate, register
from tests.pipeline.helpers import recommit


@pytest.fixture
def store(params, built, trained, mlflow_uri, tmp_path):
    """The trained outputs in a folder of their own (tests may degrade a model there)."""
    paths = dataclasses.replace(built, models=str(tmp_path / "models"),
                                evaluation=str(tmp_path / "evaluation"),
                                registered=str(tmp_path / "registered.json"))
    recommit(Path(built.models), Path(paths.models))
    recommit(Path(built.evaluation), Path(paths.evaluation))
    return dataclasses.replace(params, paths=paths), mlflow_uri


def test_run_has_params_metrics_plots_inputs_and_a_loadable_champion(store, trained, built):
    params, uri = store
    s = register.run(params, uri, log=lambda m: None)
    client = MlflowClient(uri)
    run = client.get_run(s.run_id)
    assert run.data.params["train.seed"] == str(params.train.seed)
    assert run.data.params["labels.horizon_days"] == str(params.labels.horizon_days)
    assert 0.6 < run.data.metrics["lightgbm.roc_auc"] < 1
    assert "l1_logistic.ece" in run.data.metrics and "lightgbm_auc_by_kind.young" in run.data.metrics
    assert len(run.data.metrics) <= 60  # the headline; the detail is an artifact
    detail = {f.path for f in client.list_artifacts(s.run_id)}
    assert {"metrics.json", "metrics_detail.json"} <= detail
    assert run.data.tags["git_commit"] and run.data.tags["champion_moved"] == "True"
    plots = {f.path for f in client.list_artifacts(s.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/shap.png"} <= plots
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"features", "observations"}
    md5 = {t.key: t.value for t in inputs["features"].tags}["dvc_md5"]
    assert md5 == artifacts.md5(built.features_table)
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == s.version
    # the registered pyfunc gives exactly the in-memory model's probabilities
    frame = pd.read_parquet(built.features_table).head(500)
    x = frame[list(trained.final_model.contract.features)]
    served = mlflow.pyfunc.load_model("models:/churn@champion").predict(x)
    np.testing.assert_allclose(served, trained.final_model.predict_proba(frame), rtol=1e-12)
    # and the booster is reachable for reason codes
    contrib = load("models:/churn@champion").contributions(frame)
    assert list(contrib.columns[-1:]) == ["bias"] and len(contrib) == 500


def _replace_split_model(params, model: ChurnClassifier) -> None:
    """A new train run with this split model, evaluated again (register checks that the
    metrics it logs are about the models beside them)."""
    def swap(folder: Path) -> None:
        shutil.rmtree(folder / params.paths.split_model.name)
        model.save(folder / params.paths.split_model.name)

    recommit(Path(params.paths.models), Path(params.paths.models), swap)
    quick = dataclasses.replace(params.evaluate, resamples=0, shap_sample=200)
    evaluate.run(quick, params.paths, log=lambda m: None)


def test_champion_moves_only_by_the_rule(store, monkeypatch):
    params, uri = store
    first = register.run(params, uri, log=lambda m: None)
    assert first.decision.promote
    # a worse model (one tree) with the same contract: registered, but not champion
    split = ChurnClassifier.load(params.paths.split_model)
    worse = ChurnClassifier(lgbm.truncate(split.booster, 1), split.calibrator, split.contract)
    _replace_split_model(params, worse)
    second = register.run(params, uri, log=lambda m: None)
    assert not second.decision.promote and "does not beat" in second.decision.reason
    client = MlflowClient(uri)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == first.version
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == second.version
    # an experiment never moves it, even with a better model than the champion's
    _replace_split_model(params, split)
    monkeypatch.setenv("DVC_EXP_NAME", "brave-newt")
    third = register.run(params, uri, log=lambda m: None)
    assert not third.decision.promote and "brave-newt" in third.decision.reason
    assert client.get_run(third.run_id).data.tags["dvc_exp_name"] == "brave-newt"
    # a person can
    register.promote(params, uri, second.version)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == second.version


def test_unreachable_server_fails_fast_naming_the_uri():
    with pytest.raises(tracking.TrackingError, match=r"http://127\.0\.0\.1:9/.*local store"):
        tracking.check_reachable("http://127.0.0.1:9/", timeout=2)
