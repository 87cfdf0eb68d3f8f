"""Stage `score` and the weekly job: score every customer at risk on an as-of date.

Two ways in, one scoring (scoring.score):
- `churn score --pipeline` (the DVC stage): the model file `train` wrote, the feature rows the
  `features` stage made for the export's as-of date, into `paths.score`. Its files name the
  model by its hash, never by a run id, so a second `dvc repro` reruns nothing.
- `churn score` / `churn weekly` (operations): the registry's champion (or `--model-uri`), the
  features computed here for any as-of date, into `<paths.weekly>/scores/<as_of>/`, logged to
  MLflow as a run. Those folders are the score history: outside DVC's outputs (DVC deletes a
  stage's outputs before running it), each week committed whole, a rescoring of the same week
  replacing it whole (pipeline.artifacts), two at once leaving one whole result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from common.errors import UserError
from common.exact import round_floats, round_sig
from features import observations as obs
from features import windows
from features.config import SparkConfig
from models.classifier import ChurnClassifier, ContractMismatch
from pipeline import artifacts, engines, io, tables, tracking
from pipeline.params import Paths
from pipeline.stages import observe as observe_stage
from retention.config import ReportConfig
from scoring import drift, value
from scoring.config import ScoreConfig
from scoring.score import REASON_COLUMNS, Scored, check_vocab, score

STAGE = "score"
SCORES, LIST, DRIFT, SUMMARY = "scores.parquet", "list.csv", "drift.csv", "summary.json"
REFERENCE = "reference.json"  # the drift reference, beside the model's booster (train writes it)


class ModelMismatch(UserError):
    """The model does not fit the features: names, dtypes or category codes differ."""


class StaleExport(UserError):
    """The as-of date is after the export's: the data would miss the days in between."""


@dataclass
class ScoreSummary:
    as_of: str
    export_as_of: str
    model_name: str
    model_version: str
    model_run_id: str  # "" for the DVC stage (its outputs hold no run ids)
    at_risk: int  # customers at risk on the as-of date (definitions.md)
    scored: int  # rows scored: equal to at_risk, or the scoring stops
    by_state: dict[str, int]
    by_band: dict[str, int]
    value_basis: dict[str, int]
    mean_probability: float
    list_size: int
    expected_saved: float  # sum of E[net] over the list
    value_at_risk_listed: float
    holdout: int
    drift_alarms: list[dict]  # feature, psi, p_value
    features_checked: int
    expected: dict[str, float]
    top_reasons: list[tuple[str, int]]  # family -> customers listed with it as reason_1
    actions: dict[str, int]
    folder: str
    model_label: dict = field(default_factory=dict)  # the model's label: horizon, grace days
    mlflow_run_id: str = ""
    stale: bool = False
    live: bool = True  # scored on the export's own as-of date (not a look at the past)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return round_floats(asdict(self))


# --------------------------------------------------------------------------- the model


@dataclass
class LoadedModel:
    model: ChurnClassifier
    reference: drift.References
    name: str
    version: str  # the registry version, or "file:<md5>" for a model file
    run_id: str
    md5: str


def _reference(folder: Path) -> drift.References:
    path = Path(folder) / REFERENCE
    if not path.is_file():
        raise ModelMismatch(
            f"{folder} has no {REFERENCE} (the drift reference train writes since the weekly "
            "scoring): retrain it (`dvc repro` or `churn train`, then `churn register`), or "
            "pass --model-uri of a newer model")
    return drift.References.from_dict(json.loads(path.read_text()))


MODEL_FILES = ("booster.txt", "calibrator.json", "contract.json", REFERENCE)


def load_file_model(folder: Path, name: str) -> LoadedModel:
    """The model in `folder`, checked whole: its version names the hash of all its files, and
    the contract must name the booster's own features in the booster's order (LightGBM takes
    columns by position: an edited contract would silently change every score)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} not found: give --model-uri a model folder (the `churn` "
                        "folder `churn train` writes) or models:/<name>@<alias>")
    if not (folder / "booster.txt").is_file():
        raise UserError(f"{folder} holds no model (booster.txt): run `churn train` first, or "
                        "give --model-uri a model folder or models:/<name>@<alias>")
    try:
        model = ChurnClassifier.load(folder)
        reference = _reference(folder)
        label = model.contract.label
        for key in ("grace_days", "early_life_days", "horizon_days", "window_days",
                    "recent_days"):
            int(label[key])
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise ModelMismatch(f"the model in {folder} is damaged ({type(err).__name__}: "
                            f"{str(err)[:200]}): retrain it (`churn train`) or pass another "
                            "--model-uri") from None
    booster_features = list(model.booster.feature_name())
    if booster_features != list(model.contract.features):
        bad = next((f"position {i + 1}: contract {a!r}, booster {b!r}" for i, (a, b) in
                    enumerate(zip(model.contract.features, booster_features, strict=False))
                    if a != b), f"{len(model.contract.features)} features in the contract, "
                   f"{len(booster_features)} in the booster")
        raise ModelMismatch(f"the model in {folder} is inconsistent: its contract.json does not "
                            f"name the booster's features ({bad}): retrain it or restore the "
                            "files `churn train` wrote")
    digest = model_digest(folder)
    return LoadedModel(model, reference, name, f"file:{digest[:12]}", "", digest)


def model_digest(folder: Path) -> str:
    """The hash of all of a model folder's files: its name in the score history."""
    return hashlib.md5(  # noqa: S324 - a content hash
        "".join(artifacts.md5(Path(folder) / f) for f in MODEL_FILES).encode()).hexdigest()


def load_registered(uri: str, tracking_uri: str) -> LoadedModel:
    """models:/<name>@<alias> or models:/<name>/<version> from the registry, or a local model
    folder. Its files are read from MLflow's store (nothing is downloaded into the project)."""
    if not uri.startswith("models:/"):
        return load_file_model(Path(uri), Path(uri).name)
    with tracking.server_errors(tracking_uri):
        tracking.bound_http_time()
        tracking.check_reachable(tracking_uri)
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        mlflow.set_tracking_uri(tracking_uri)
        client = MlflowClient()
        spec = uri.removeprefix("models:/")
        try:
            if "@" in spec:
                name, alias = spec.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, version = spec.rsplit("/", 1)
                mv = client.get_model_version(name, version)
        except (MlflowException, ValueError) as err:
            if _server_failed(err, tracking_uri):
                raise  # server_errors names the server: it failed, the model may be there
            raise UserError(
                f"{uri} is not in the registry at {tracking_uri}: run `dvc repro` (it registers "
                "the model and makes the first one champion), or name another version with "
                "--model-uri models:/<name>/<version>") from None
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            found = sorted(root.glob("artifacts/*/booster.txt"))
            if not found:
                raise UserError(f"{uri} holds no churn model files (artifacts/*/booster.txt)")
            loaded = load_file_model(found[0].parent, name)
        return LoadedModel(loaded.model, loaded.reference, name, str(mv.version), mv.run_id or "",
                           loaded.md5)


def _server_failed(err: Exception, tracking_uri: str) -> bool:
    """A remote server's error other than "no such model, version or alias"."""
    if not tracking_uri.startswith(("http://", "https://")) or isinstance(err, ValueError):
        return False
    return getattr(err, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST",
                                                  "INVALID_PARAMETER_VALUE")


# --------------------------------------------------------------------------- the data


@dataclass
class Data:
    manifest: tables.Manifest
    record: artifacts.StageRecord
    customers: pd.DataFrame
    subs: pd.DataFrame


def read_data(paths: Paths) -> Data:
    record = artifacts.read_all(*tables.inputs(paths, "interim"))["interim"]
    m = tables.manifest(paths)
    customers, subs = observe_stage.interim_frames(paths, m)
    return Data(m, record, customers, subs)


def check_as_of(as_of: dt.date | None, m: tables.Manifest, allow_stale: bool) -> dt.date:
    if as_of is None:
        return m.as_of
    if as_of > m.as_of and not allow_stale:
        raise StaleExport(
            f"--as-of {as_of} is after the export's as-of date {m.as_of}: the data miss the "
            f"{(as_of - m.as_of).days} days in between (a stale export). Ingest a newer export "
            "(`churn weekly <folder>`), or pass --allow-stale to score anyway")
    return as_of


def _distinct(path: Path, column: str) -> list[str]:
    rows = duckdb.connect().execute(f"SELECT DISTINCT {column} FROM read_parquet(?) "
                                    f"WHERE {column} IS NOT NULL", [str(path)]).fetchall()
    return sorted(str(r[0]) for r in rows)


def build_features(paths: Paths, data: Data, model: ChurnClassifier, points: pd.DataFrame,
                   *, engine: str = "duckdb", spark: SparkConfig | None = None,
                   scratch: Path | None = None) -> pd.DataFrame:
    """The catalogue's features at the scoring points, with the model's own windows and
    category codes (scoring.score.check_vocab stops on a category it never saw), computed by
    the features stage's expressions on `engine`.

    `scratch`: where the points are written for the engine to read (on Spark, a folder the
    driver and executors see; default: this machine's temp folder)."""
    files = tables.interim_files(paths, data.manifest)
    check_vocab(model, {"plan_code": _distinct(files["subscriptions"], "plan"),
                        "channel_code": _distinct(files["customers"], "channel")})
    label = model.contract.label
    spec = windows.Spec(int(label["window_days"]), int(label["recent_days"]),
                        int(label["horizon_days"]))
    vocab = windows.Vocab(plans=tuple(model.contract.vocab["plan_code"]),
                          channels=tuple(model.contract.vocab["channel_code"]))
    con = engines.connect(engine, data.manifest.timezone, spark)
    src = {name: con.read_parquet(str(path), table_name=name) for name, path in files.items()}
    table = observe_stage.arrow(points.assign(label=pd.array([pd.NA] * len(points), "Int8")),
                                pd.Series(np.nan, index=points.index))
    with tempfile.TemporaryDirectory(prefix="churn-score-", dir=scratch) as tmp:
        pq.write_table(table, Path(tmp) / "points.parquet")
        pts = con.read_parquet(str(Path(tmp) / "points.parquet"), table_name="points")
        engines.check_wall_clock(con, [*src, "points"])
        expr = windows.build(pts, src, vocab=vocab, spec=spec)
        if con.name == "duckdb":
            return con.to_pyarrow(expr).to_pandas()
        # Spark's rows through the features stage's own writer: the same order and types
        engines.write_parquet(con, expr, Path(tmp) / "features.parquet")
        return pq.read_table(Path(tmp) / "features.parquet").to_pandas()


# --------------------------------------------------------------------------- scoring


def _score(frame: pd.DataFrame, data: Data, loaded: LoadedModel, config: ScoreConfig,
           report: ReportConfig, *, as_of: dt.date, runs: pd.DataFrame,
           at_risk: int) -> Scored:
    """`runs`: the runs as an export taken on `as_of` shows them (the caller's, for its points)."""
    label = loaded.model.contract.label
    grace, early = int(label["grace_days"]), int(label["early_life_days"])
    if len(frame) != at_risk:
        raise RuntimeError(f"{len(frame)} feature rows for {at_risk} customers at risk")
    fits, hist, per = value.cohort_fits(data.customers, data.subs, runs, as_of=as_of,
                                        calendar=data.manifest.calendar, grace_days=grace,
                                        config=report)
    frame = frame.assign(t=pd.to_datetime(frame["t"]).astype("datetime64[s]"))
    worth = value.values(frame, value.current_period_days(frame, data.subs),
                         value.signup_dates(frame, data.customers), fits, hist, per,
                         report.discount_rate)
    with _contract():
        return score(frame, loaded.model, loaded.reference, config, as_of=as_of,
                     state=obs.state(frame, data.subs), value=worth, model_name=loaded.name,
                     model_version=loaded.version, early_life_days=early)


@contextlib.contextmanager
def _contract():
    """A ContractMismatch (naming the feature) becomes a message with what to do."""
    try:
        yield
    except ContractMismatch as err:
        raise ModelMismatch(f"the model does not fit these features: {err}. Retrain on this "
                            "export (`dvc repro`), or pass --model-uri of a model trained on "
                            "the same feature catalogue") from None


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = round_sig(out[c].to_numpy())
    return out


def _list_csv(scores: pd.DataFrame) -> pd.DataFrame:
    listed = scores[scores["in_list"]]
    cols = ["rank", "customer_id", "churn_probability", "risk_band", "state", "value",
            "expected_net", *[c for c in REASON_COLUMNS if not c.endswith("_direction")],
            "suggested_action"]
    return _rounded(listed[cols])


def summarise(scored: Scored, loaded: LoadedModel, *, as_of: dt.date, m: tables.Manifest,
              folder: Path, at_risk: int) -> ScoreSummary:
    s = scored.scores
    listed = s[s["in_list"]]
    alarms = scored.drift[scored.drift["alarm"]]
    return ScoreSummary(
        as_of=as_of.isoformat(), export_as_of=m.as_of.isoformat(), model_name=loaded.name,
        model_version=loaded.version, model_run_id=loaded.run_id, at_risk=at_risk,
        scored=len(s),
        by_state={k: int((s["state"] == k).sum()) for k in ("renewal_due", "pending", "young",
                                                             "ongoing")},
        by_band={k: int(v) for k, v in s["risk_band"].value_counts().items()},
        value_basis={k: int(v) for k, v in s["value_basis"].value_counts().sort_index().items()},
        mean_probability=float(s["churn_probability"].mean()) if len(s) else float("nan"),
        list_size=len(listed), expected_saved=float(listed["expected_net"].sum()),
        value_at_risk_listed=float(listed["value_at_risk"].sum()),
        holdout=int(s["holdout"].sum()),
        drift_alarms=[{"feature": r.feature, "psi": float(r.psi), "p_value": float(r.p_value)}
                      for r in alarms.itertuples(index=False)],
        features_checked=len(scored.drift), expected=scored.expected.to_dict(),
        top_reasons=Counter(listed["reason_1_family"][listed["reason_1_family"] != ""]
                            ).most_common(),
        actions={k: int(v) for k, v in listed["suggested_action"].value_counts().items()},
        folder=str(folder), stale=as_of > m.as_of, live=as_of >= m.as_of,
        notes=_notes(s),
        model_label={k: int(v) for k, v in sorted(loaded.model.contract.label.items())})


def _notes(s: pd.DataFrame) -> list[str]:
    notes = []
    unknown = int(s["value"].isna().sum())
    if unknown:
        notes.append(f"{unknown:,} customers have no value (no renewal history on their plan's "
                     "clock yet, so no DERL): they are scored but never listed")
    return notes


def write(target: Path, scored: Scored, summary: ScoreSummary, inputs: dict) -> None:
    with artifacts.stage_output(target, STAGE, inputs) as tmp:
        _rounded(scored.scores).to_parquet(tmp / SCORES, index=False)
        _list_csv(scored.scores).to_csv(tmp / LIST, index=False, lineterminator="\n")
        _rounded(scored.drift).to_csv(tmp / DRIFT, index=False, lineterminator="\n")
        io.write_json(summary.to_dict(), tmp / SUMMARY)


def run_pipeline(config: ScoreConfig, report: ReportConfig, paths: Paths,
                 model_name: str) -> ScoreSummary:
    """The DVC stage: the export's as-of date, the model `train` wrote, the feature rows the
    `features` stage made; files name the model by hash only."""
    target = artifacts.claim(Path(paths.score), STAGE)
    inputs = artifacts.read_all(*tables.inputs(paths, "interim", "features", "models"))
    data = read_data(paths)
    loaded = load_file_model(paths.model, model_name)
    table = pd.read_parquet(paths.features_table, filters=[("kind", "==", "scoring")])
    runs = obs.runs(data.customers, data.subs, view=data.manifest.as_of,
                    grace_days=int(loaded.model.contract.label["grace_days"]))
    at_risk = len(obs.scoring_points(runs, day=data.manifest.as_of))
    scored = _score(table, data, loaded, config, report, as_of=data.manifest.as_of,
                    runs=runs, at_risk=at_risk)
    summary = summarise(scored, loaded, as_of=data.manifest.as_of, m=data.manifest,
                        folder=Path(paths.score), at_risk=at_risk)  # no machine's path in it
    _unchanged(paths, data)
    write(target, scored, summary, inputs)
    return summary


def week_folder(paths: Paths, as_of: dt.date) -> Path:
    return Path(paths.weekly) / "scores" / as_of.isoformat()


def _unchanged(paths: Paths, data: Data) -> None:
    """The export read at the start is still the one there: another run (a new ingest) did not
    swap it in while this one was reading it."""
    now = artifacts.StageRecord.read(Path(paths.interim))
    if now is None or now.digest != data.record.digest:
        raise artifacts.StaleInputError(
            f"{paths.interim} was replaced while this scoring read it (another `churn weekly` "
            "or `churn ingest` ran at the same time): nothing was written; run it again")


def _check_day(day: dt.date, data: Data) -> None:
    first = data.customers["signup_date"].min()
    if pd.isna(first) or day <= pd.Timestamp(first).date():
        raise UserError(f"nobody had signed up before {day} (the export's first signup is "
                        f"{'none' if pd.isna(first) else pd.Timestamp(first).date()}): choose a "
                        "later --as-of")
    if (day - data.manifest.as_of).days > 366:
        raise StaleExport(f"--as-of {day} is more than a year after the export's as-of date "
                          f"{data.manifest.as_of}: ingest a newer export")


def _newer_week(target: Path, m: tables.Manifest) -> None:
    """A week scored from a newer export is never replaced by a scoring of an older one."""
    path = target / SUMMARY
    if not path.is_file():
        return
    try:
        before = dt.date.fromisoformat(json.loads(path.read_text())["export_as_of"])
    except (ValueError, KeyError, TypeError):
        return
    if before > m.as_of:
        raise UserError(f"{target} was scored from a newer export (of {before}) than this one "
                        f"(of {m.as_of}): it is kept. Score the newer export (`churn weekly "
                        "<folder>`), or choose another --as-of")


def run_weekly(config: ScoreConfig, report: ReportConfig, paths: Paths, *, model_uri: str,
               tracking_uri: str, experiment: str, as_of: dt.date | None = None,
               allow_stale: bool = False, track: bool = True, engine: str = "duckdb",
               spark: SparkConfig | None = None, loaded: LoadedModel | None = None,
               log: Callable[[str], None] = print) -> ScoreSummary:
    """Score the ingested export (paths.interim) on `as_of` with a registered model, into the
    score history, and log the run to MLflow. The features run on `engine` (features.engine).
    `loaded`: the model of `model_uri` if the caller loaded it already (`churn weekly` checks
    the model before it ingests)."""
    check_workspace(paths)
    if track:
        tracking.check_reachable(tracking_uri)  # in seconds, before any work
    data = read_data(paths)
    day = check_as_of(as_of, data.manifest, allow_stale)
    _check_day(day, data)
    target = artifacts.claim(week_folder(paths, day), STAGE)
    _newer_week(target, data.manifest)
    if loaded is None:
        loaded = load_registered(model_uri, tracking_uri)
    log(f"model {loaded.name} version {loaded.version}; export of {data.manifest.as_of}, "
        f"scoring {day}")
    grace = int(loaded.model.contract.label["grace_days"])
    runs = obs.runs(data.customers, data.subs, view=day, grace_days=grace)
    points = obs.scoring_points(runs, day=day)
    if len(points) == 0:
        raise UserError(f"no customer is at risk on {day} in the export of "
                        f"{data.manifest.as_of}: nothing to score")
    points["state"] = obs.state(points, data.subs)
    log(f"features of {len(points):,} customers at risk on {engine}")
    with _contract(), scratch_folder(check_workspace(paths)) as scratch:
        frame = build_features(paths, data, loaded.model, points, engine=engine, spark=spark,
                               scratch=scratch)
    log("probabilities, value, reasons, drift")
    scored = _score(frame, data, loaded, config, report, as_of=day, runs=runs,
                    at_risk=len(points))
    summary = summarise(scored, loaded, as_of=day, m=data.manifest, folder=target,
                        at_risk=len(points))
    _unchanged(paths, data)
    write(target, scored, summary, {"interim": data.record, "model": loaded.md5})
    if track:
        with tracking.logged_after_writing("the scores are", target):
            summary.mlflow_run_id = log_run(target, summary, scored, tracking_uri, experiment)
    return summary


def log_run(folder: Path, summary: ScoreSummary, scored: Scored, uri: str,
            experiment: str) -> str:
    """One MLflow run per scoring: the analysts' weekly history next to the training runs."""
    with tracking.server_errors(uri):
        import mlflow

        tracking.setup(uri, experiment)
        tags = tracking.git_state() | {
            "as_of": summary.as_of, "export_as_of": summary.export_as_of,
            "model_name": summary.model_name, "model_version": summary.model_version,
            "model_run_id": summary.model_run_id, "kind": "weekly scoring",
            "drift_alarms": ",".join(a["feature"] for a in summary.drift_alarms)}
        metrics = {"customers_scored": summary.scored, "at_risk": summary.at_risk,
                   "mean_probability": summary.mean_probability, "list_size": summary.list_size,
                   "expected_saved_value": summary.expected_saved,
                   "value_at_risk_listed": summary.value_at_risk_listed,
                   "holdout": summary.holdout, "drift_alarm_count": len(summary.drift_alarms)}
        metrics |= {f"expected.{k}": v for k, v in summary.expected.items()}
        metrics |= {f"psi.{r.feature}": float(r.psi) for r in scored.drift.itertuples()}
        metrics = {k: float(v) for k, v in metrics.items()
                   if v is not None and np.isfinite(float(v))}
        with mlflow.start_run(run_name=f"score {summary.as_of}", tags=tags) as run:
            mlflow.log_metrics(metrics)
            artifacts.kill_point("tracked", STAGE)  # the run started, not ended
            for name in (SUMMARY, DRIFT, LIST):
                mlflow.log_artifact(str(Path(folder) / name))
        return run.info.run_id


def history(paths: Paths) -> pd.DataFrame:
    """Every week scored so far (one folder per as-of date), as one table."""
    files = sorted(Path(paths.weekly, "scores").glob(f"*/{SCORES}"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def check_workspace(paths: Paths) -> Path:
    """paths.weekly, created if missing; a file there is a mistake, never replaced."""
    root = Path(paths.weekly)
    if root.exists() and not root.is_dir():
        raise UserError(f"paths.weekly ({root}) is a file: the weekly job needs a folder there; "
                        "change paths.weekly or move the file")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise UserError(f"paths.weekly ({root}) cannot be made: a file stands where one of its "
                        "folders should be; change paths.weekly or move the file") from None
    return root


@contextlib.contextmanager
def scratch_folder(workspace: Path) -> Iterator[Path]:
    """This process's folder under <workspace>/.scratch, removed when done: the points the
    engine reads (a Spark cluster's executors see the workspace, not this machine's /tmp).
    Folders of this machine's processes that no longer run (killed scorings) go first."""
    base = Path(workspace) / ".scratch"
    base.mkdir(exist_ok=True)
    host = socket.gethostname()
    for old in base.glob(f"{host}.*.*"):
        pid = old.name[len(host) + 1:].split(".")[0]
        if pid.isdigit() and not tracking.running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    for _ in range(10):  # another scoring finishing now may remove the empty base folder
        base.mkdir(exist_ok=True)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f"{host}.{os.getpid()}.", dir=base))
            break
        except FileNotFoundError:
            continue
    else:
        raise OSError(f"cannot make a scratch folder in {base}")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):  # the last scoring out leaves no empty folder
            base.rmdir()


@contextlib.contextmanager
def weekly_lock(paths: Paths):
    """One weekly job at a time per workspace: a second `churn weekly` waits for the first to
    finish, so it never ingests a new export while the first one is reading its own."""
    with artifacts.lock(check_workspace(paths) / "job"):
        yield


def weekly_paths(paths: Paths) -> Paths:
    """The weekly job's own workspace: a new export is ingested into <weekly>/interim, never
    into the pipeline's interim folder (dvc repro would then see a changed output)."""
    import dataclasses

    return dataclasses.replace(paths, interim=str(Path(paths.weekly) / "interim"))




# --------------------------------------------------------------------------- the terminal


def render(s: ScoreSummary, console) -> None:
    """The one-screen summary: who was scored, the list, its expected saved value, the bands,
    drift alarms, the reasons that come up most, and the expected performance."""
    from rich.table import Table

    def money(x: float) -> str:
        return "-" if x != x else f"{x:,.0f}"

    table = Table(title=f"scores as of {s.as_of} (export of {s.export_as_of}), model "
                        f"{s.model_name} {s.model_version}")
    table.add_column("band")
    table.add_column("customers", justify="right")
    for band, n in s.by_band.items():
        table.add_row(band, f"{n:,}")
    console.print(table)
    e = s.expected
    alarms = ", ".join(f"{a['feature']} (PSI {a['psi']:.2f})" for a in s.drift_alarms)
    reasons = ", ".join(f"{family} {n:,}" for family, n in s.top_reasons[:5])
    actions = ", ".join(f"{a} {n:,}" for a, n in s.actions.items())
    states = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in s.by_state.items())
    basis = ", ".join(f"{k} {v:,}" for k, v in s.value_basis.items())
    console.print(
        f"at risk on {s.as_of}: {s.at_risk:,}; scored {s.scored:,} ({states}); mean churn "
        f"probability {s.mean_probability:.3f}\n"
        f"list (by expected profit, capped by score.capacity): [bold]{s.list_size:,}[/] "
        f"customers, expected saved value [bold]{money(s.expected_saved)}[/] "
        f"(value at risk listed {money(s.value_at_risk_listed)}); control group "
        f"{s.holdout:,} (never listed)\n"
        f"value basis: {basis}\n"
        f"top reasons on the list: {reasons or '-'}; actions: {actions or '-'}\n"
        f"drift: {len(s.drift_alarms)} alarm(s) over {s.features_checked} features"
        f"{': ' + alarms if alarms else ''}\n"
        f"expected from the probabilities alone: AUC {e['auc']:.3f} [{e['auc_low']:.3f}, "
        f"{e['auc_high']:.3f}], top-decile lift {e['lift_top_decile']:.2f} "
        f"[{e['lift_low']:.2f}, {e['lift_high']:.2f}], Brier {e['brier']:.4f}\n"
        f"{s.folder}/: {SCORES}, {LIST} (for the retention team), {DRIFT}, {SUMMARY}"
        + (f"\nMLflow run {s.mlflow_run_id}" if s.mlflow_run_id else "")
        + ("\n[yellow]stale:[/] the as-of date is after the export's" if s.stale else ""))
