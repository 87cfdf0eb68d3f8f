"""A real `dvc repro` in a temp git repo: it builds, and a second run does nothing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.stages.register import _leaves
from tests.pipeline.helpers import init_repo, project_repo, run_command, write_params

pytestmark = pytest.mark.slow


_run = run_command


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = project_repo(tmp_path_factory.mktemp("repo"))
    write_params(repo, simulate={"customers": 500, "days": 600},
                 train={"test_days": 90, "calibration_days": 100, "oof_folds": 3},
                 evaluate={"resamples": 50, "shap_sample": 300})
    init_repo(repo)
    return repo


STAGES = ("simulate", "ingest", "observe", "features", "train", "evaluate", "register", "score")


def test_repro_builds_then_is_a_no_op(repo):
    first = _run([sys.executable, "-m", "dvc", "repro"], repo)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    assert (repo / "data" / "interim" / "_manifest.json").exists()
    assert (repo / "data" / "features" / "features.parquet").exists()
    metrics = json.loads((repo / "reports" / "evaluation" / "metrics.json").read_text())
    assert metrics["lightgbm"]["roc_auc"] > 0.6
    # register wrote to the project's own MLflow store (DVC_ROOT), champion set
    store = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    # the report stage logged its own run, tagged with the export it was made from
    experiment = client.get_experiment_by_name("churn").experiment_id
    reports = client.search_runs([experiment], "attributes.run_name = 'report'")
    assert len(reports) == 1 and reports[0].data.tags["export_manifest"]
    lock = (repo / "dvc.lock").read_bytes()
    second = _run([sys.executable, "-m", "dvc", "repro"], repo)
    assert "Running stage" not in second.stdout
    assert len(client.search_runs([experiment], "attributes.run_name = 'report'")) == 1
    assert (repo / "dvc.lock").read_bytes() == lock
    shown = _run([sys.executable, "-m", "dvc", "metrics", "show"], repo)
    assert "lightgbm.roc_auc" in shown.stdout
    # the headline: a few dozen figures, one screen; the detail is a file beside it
    assert len(_leaves(metrics)) <= 60
    detail = json.loads((repo / "reports" / "evaluation" / "metrics_detail.json").read_text())
    assert len(_leaves(detail)) > 500


def test_the_weekly_job_leaves_dvc_with_nothing_to_do(repo):
    """`churn weekly <export>` with the champion the repro registered: its own workspace, an
    MLflow run; afterwards `dvc repro` still has nothing to run."""
    lock = (repo / "dvc.lock").read_bytes()
    out = _run([sys.executable, "-m", "pipeline.cli", "weekly", "data/sim/export"], repo)
    assert "expected saved value" in out.stderr + out.stdout
    weeks = [p for p in (repo / "data" / "weekly" / "scores").iterdir()
             if not p.name.startswith(".")]  # .<week>.lock: the writers' lock
    assert len(weeks) == 1 and (weeks[0] / "scores.parquet").is_file()
    store = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    experiment = client.get_experiment_by_name("churn").experiment_id
    runs = client.search_runs([experiment], f"attributes.run_name = 'score {weeks[0].name}'")
    assert len(runs) == 1 and runs[0].data.tags["model_version"] == "1"
    again = _run([sys.executable, "-m", "dvc", "repro"], repo)
    assert "Running stage" not in again.stdout
    assert (repo / "dvc.lock").read_bytes() == lock
    assert "up to date" in _run([sys.executable, "-m", "dvc", "status"], repo).stdout.lower()


def test_a_fresh_clone_registers_in_its_own_store(repo):
    """A clone has the lock but no MLflow store: `register` must run, the rest stay."""
    (repo / "data" / "registered.json").unlink()
    out = _run([sys.executable, "-m", "dvc", "repro"], repo)
    assert "Running stage 'register'" in out.stdout
    assert "Running stage 'train'" not in out.stdout


def test_repro_from_scratch_gives_the_same_lock(repo):
    """Same data + params = same bytes: a clean rebuild reproduces dvc.lock exactly."""
    lock = (repo / "dvc.lock").read_bytes()
    for out in ("data", "reports"):
        shutil.rmtree(repo / out)
    _run([sys.executable, "-m", "dvc", "repro", "--force"], repo)
    assert (repo / "dvc.lock").read_bytes() == lock


def test_an_experiment_reaches_mlflow_but_never_moves_the_champion(repo):
    """`dvc exp run -S ...` (the workspace run; queued ones get the same DVC_EXP_NAME) logs a
    run tagged with the experiment's name and registers a challenger; champion stays."""
    store = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    champion = client.get_model_version_by_alias("churn", "champion").version
    _run([sys.executable, "-m", "dvc", "exp", "run", "-n", "few-leaves",
          "-S", "train.lgbm.num_leaves=3"], repo)
    challenger = client.get_model_version_by_alias("churn", "challenger")
    assert challenger.version != champion
    run = client.get_run(challenger.run_id)
    assert run.data.tags["dvc_exp_name"] == "few-leaves"
    assert run.data.params["train.lgbm.num_leaves"] == "3"
    assert client.get_model_version_by_alias("churn", "champion").version == champion
    assert run.data.tags["champion_moved"] == "False"
    assert "never moved by experiments" in run.data.tags["champion_decision"]
    registered = json.loads((repo / "data" / "registered.json").read_text())
    assert registered["dvc_exp_name"] == "few-leaves"
