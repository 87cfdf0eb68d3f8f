"""Stage `register`: one MLflow run per trained model, the registry, and the champion rule.

Its own stage because DVC's run cache can skip `train`, and a skipped stage logs nothing.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import models
from models.classifier import ChurnClassifier
from models.evaluation import point_metrics
from models.registry import Decision, decide
from pipeline import artifacts, io, tables, tracking
from pipeline.params import Params, as_dict

CHAMPION, CHALLENGER = "champion", "challenger"
STAGE = "register"


@dataclass
class RegisterSummary:
    run_id: str
    version: str
    decision: Decision


def _leaves(tree: dict, prefix: str = "") -> dict:
    """Dotted key -> value for every leaf of a nested dict (`train.lgbm.num_leaves`)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out |= _leaves(value, name + ".") if isinstance(value, dict) and value else {name: value}
    return out


def _metrics(tree: dict) -> dict[str, float]:
    """The finite numbers among the leaves: what MLflow takes as metrics."""
    return {k: float(v) for k, v in _leaves(tree).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)}


def _requirements() -> list[str]:
    import lightgbm
    import mlflow
    import sklearn

    return [f"mlflow=={mlflow.__version__}", f"lightgbm=={lightgbm.__version__}",
            f"pandas=={pd.__version__}", f"numpy=={np.__version__}",
            f"scikit-learn=={sklearn.__version__}"]


def _auc(model: ChurnClassifier, frame: pd.DataFrame) -> float:
    return point_metrics(frame["label"].to_numpy(), model.predict_proba(frame))["roc_auc"]


# MLflow's advice for other people's models: our integer columns are category codes that are
# never missing, and the dataset source is a plain path.
QUIET = (
    "Hint: Inferred schema contains integer column",
    "The specified dataset source can be interpreted in multiple ways",
    ".*Any type hint is inferred as AnyType",
)


def run(params: Params, uri: str, log: Callable[[str], None] = print) -> RegisterSummary:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with warnings.catch_warnings():
        for message in QUIET:
            warnings.filterwarnings("ignore", message=message)
        with tracking.server_errors(uri):
            return _run(params, uri, log)


def _run(params: Params, uri: str, log: Callable[[str], None]) -> RegisterSummary:
    tracking.check_reachable(uri)  # seconds, naming the URI, before anything is read
    import mlflow

    # the summary says what matters; MLflow's own INFO lines repeat it (set after the import:
    # importing mlflow configures its logger)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    paths, name = params.paths, params.mlflow.model_name
    inputs = artifacts.read_all(*tables.inputs(paths, "models", "evaluation",
                                                     "features", "observations"))
    tracking.setup(uri, params.mlflow.experiment)
    client = MlflowClient()
    model = ChurnClassifier.load(paths.model)
    split_model = ChurnClassifier.load(paths.split_model)
    headline = io.read_json(paths.metrics)
    metrics = io.read_json(paths.metrics_detail)
    pred = pd.read_parquet(paths.predictions)
    table = pd.read_parquet(paths.features_table)
    test = pred[["customer_id", "t", "label"]].merge(
        table.drop(columns=["label"]), on=["customer_id", "t"], how="left")
    example = test[list(model.contract.features)].head(5)
    experiment = os.environ.get("DVC_EXP_NAME")
    tags = tracking.git_state() | {"dvc_exp_name": experiment or "",
                                   "dvc_stage": os.environ.get("DVC_STAGE", "register")}

    with mlflow.start_run(run_name="train", tags=tags) as run:
        sections = ("train", "labels", "features", "evaluate")
        mlflow.log_params({k: str(v)[:500] for k, v in
                           _leaves({s: as_dict(getattr(params, s)) for s in sections}).items()})
        mlflow.log_metrics(_metrics(headline))
        mlflow.log_dict(headline, "metrics.json")
        mlflow.log_dict(metrics, "metrics_detail.json")
        if paths.plots.exists():
            mlflow.log_artifacts(str(paths.plots), "plots")
        mlflow.log_artifacts(str(paths.split_model), "split_model")
        for key, path, context in (("features", paths.features_table, "training"),
                                   ("observations", paths.observations_table, "labels")):
            ds = mlflow.data.from_pandas(
                table.head(1000) if key == "features" else pd.read_parquet(path).head(1000),
                source=str(path), name=path.stem)
            mlflow.log_input(ds, context=context, tags={
                "dvc_md5": inputs[key].files[path.name], "stage_digest": inputs[key].digest,
                "rows": str(len(table))})
        package = Path(models.__file__).parent
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(package / "pyfunc_model.py"),
            artifacts={"model": str(paths.model)},
            code_paths=[str(package)], pip_requirements=_requirements(),
            signature=infer_signature(example, model.predict_proba(example)),
            input_example=example, registered_model_name=name,
        )
        version = str(info.registered_model_version)
        client.set_registered_model_alias(name, CHALLENGER, version)
        artifacts.kill_point("logged", STAGE)  # a version registered, the champion not decided

        try:
            current = client.get_model_version_by_alias(name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            current = None
        new_auc = metrics["test"]["lightgbm"]["all"]["roc_auc"]["value"]
        champion_auc, same = None, False
        if current is not None and not experiment:
            # like for like: the champion's out-of-time model, re-scored on the new test slice
            # (its production refit may have trained on these very points)
            champion_split = ChurnClassifier.load(Path(mlflow.artifacts.download_artifacts(
                run_id=current.run_id, artifact_path="split_model")))
            same = champion_split.contract.same_as(model.contract)
            if same:
                champion_auc = _auc(champion_split, test)
                new_auc = _auc(split_model, test)
        decision = decide(has_champion=current is not None, experiment=experiment,
                          same_contract=same, new_auc=new_auc, champion_auc=champion_auc)
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
        artifacts.kill_point("decided", STAGE)  # the champion moved (or not), the run not ended
        mlflow.set_tags({"champion_decision": decision.reason,
                         "champion_moved": str(decision.promote),
                         "previous_champion": current.version if current else ""})
        mlflow.log_metrics({"registry.new_test_auc": new_auc} | (
            {"registry.champion_test_auc": champion_auc} if champion_auc is not None else {}))
        client.set_model_version_tag(name, version, "champion_decision", decision.reason)
    # what DVC tracks of this stage: which model was registered, nothing that depends on the
    # store (run ids, versions, the champion decision live in MLflow), so two clean builds give
    # the same dvc.lock; its absence in a fresh clone makes `dvc repro` register there too
    registered = {"model_name": name,
                  "model_md5": inputs["models"].files[f"{paths.model.name}/booster.txt"],
                  "inputs": {k: r.digest for k, r in sorted(inputs.items())},
                  "dvc_exp_name": experiment or ""}
    with artifacts.write_file(Path(paths.registered), STAGE) as tmp:
        tmp.write_text(io.json_text(registered))
    log(f"run {run.info.run_id}: {name} version {version} -> {CHALLENGER}; {decision.reason}")
    return RegisterSummary(run.info.run_id, version, decision)


def promote(params: Params, uri: str, version: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with tracking.server_errors(uri):
        tracking.setup(uri, params.mlflow.experiment)
        client = MlflowClient()
        name = params.mlflow.model_name
        try:
            client.get_model_version(name, version)
        except MlflowException:
            raise tracking.TrackingError(
                f"{name} has no version {version!r} in {uri}: see `mlflow ui` or "
                "the registry for the versions there") from None
        client.set_registered_model_alias(name, CHAMPION, version)
        artifacts.kill_point("aliased", "promote")  # the champion moved, not yet tagged
        client.set_model_version_tag(name, version, "champion_decision", "promoted by hand")
    return f"{name} version {version} is now {CHAMPION}"


def render(s: RegisterSummary, console, *, uri: str, model_name: str) -> None:
    """One sentence: the run, the version, and whether the champion moved (and why)."""
    console.print(
        f"MLflow {uri}: run {s.run_id}, model {model_name} version {s.version}, "
        f"registered as '{CHALLENGER}'"
        + (f" and promoted to '{CHAMPION}' ({s.decision.reason})."
           if s.decision.promote else
           f"; '{CHAMPION}' stays where it was ({s.decision.reason}).")
    )
