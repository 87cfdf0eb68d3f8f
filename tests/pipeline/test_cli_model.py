"""The model half of the CLI, run as a user runs it: observe -> features -> train -> evaluate
-> register -> promote, on a small world with a temp MLflow store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.catalogue import render
from pipeline.cli import app
from tests.pipeline.helpers import ROOT, write_params

runner = CliRunner()
pytestmark = pytest.mark.slow


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the console wraps long lines


def test_model_commands_end_to_end(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    params = str(write_params(
        tmp_path, simulate={"customers": 500, "days": 600},
        train={"test_days": 90, "calibration_days": 100, "oof_folds": 3},
        evaluate={"resamples": 30, "shap_sample": 200}))
    # the order matters: each stage reads what the one before wrote
    missing = runner.invoke(app, ["observe", "--params", params])
    assert missing.exit_code == 2 and "run `churn ingest` first" in missing.output
    _ok(["simulate", "--params", params])
    _ok(["ingest", "--params", params])
    out = _ok(["observe", "--params", params])
    assert "early_life" in out and "churned before day 90" in out
    out = _ok(["features", "--params", params])
    assert "features on duckdb" in out
    other = runner.invoke(app, ["features", "--params", params, "--engine", "polars"])
    assert other.exit_code == 2 and "features.engine: 'polars' is not one of" in other.output
    out = _ok(["train", "--params", params])
    assert "slices: train" in out and "purged" in out
    assert "sigmoid (in use: train.calibration)" in out and "isotonic" in out
    out = _ok(["evaluate", "--params", params])
    assert "lightgbm - l1_logistic" in out
    metrics = json.loads((tmp_path / "reports" / "evaluation" / "metrics.json").read_text())
    assert set(metrics) >= {"base_rate", "l1_logistic", "lightgbm", "lightgbm_minus_l1_logistic"}
    detail = json.loads((tmp_path / "reports" / "evaluation" / "metrics_detail.json").read_text())
    assert set(detail["test"]) >= {"base_rate", "l1_logistic", "lightgbm"}
    assert (tmp_path / "reports" / "evaluation" / "plots" / "roc.png").stat().st_size > 10_000
    out = _ok(["register", "--params", params])
    assert "version 1, registered as 'challenger' and promoted to 'champion' (no champion yet)" in out
    out = _ok(["register", "--params", params])
    assert "version 2, registered as 'challenger'; 'champion' stays where it was" in out
    assert "version 2 is now champion" in _ok(["promote", "2", "--params", params])
    bad = runner.invoke(app, ["promote", "9", "--params", params])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    table = pd.read_parquet(tmp_path / "data" / "features" / "features.parquet")
    assert table["label"].notna().sum() > 1000


def test_feature_catalogue_page_is_current(tmp_path):
    _ok(["features", "--doc", str(tmp_path / "f.md")])
    assert (tmp_path / "f.md").read_text() == render()
    assert (ROOT / "docs" / "features.md").read_text() == render(), "run `churn features --doc`"


def test_register_fails_fast_on_an_unreachable_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing trained here: the server is checked first
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = runner.invoke(app, ["register", "--params", str(write_params(tmp_path))])
    assert result.exit_code == 2
    assert "http://127.0.0.1:9 did not answer" in result.output
    assert "Traceback" not in result.output
