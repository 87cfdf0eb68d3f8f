"""`params.yaml`, read once at the edge into the packages' own configs and passed down.

The only module of the project that imports yaml. Each library package owns its config
dataclass and its range checks (records, simulator, features, models); this module composes
them. Unknown or missing keys, wrong types and values out of range stop with an error naming
the file and the dotted key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from common.errors import ConfigError, UserError
from features.config import FeatureConfig, LabelConfig
from models.config import EvaluateConfig, TrainConfig
from records.config import IngestConfig
from retention.config import ReportConfig
from scoring.config import ScoreConfig
from simulator.config import SimulateConfig


class ParamsError(UserError):
    """params.yaml (or a flag) is missing a key, has an unknown one, or a value out of range."""


OUTPUT_KEYS = ("sim", "interim", "observations", "features", "models", "evaluation", "report",
               "score", "weekly")


@dataclass(frozen=True)
class Paths:
    """Every output of the pipeline: one folder per stage (committed whole, with its
    `_stage.json`), named once here and in `params.yaml` (dvc.yaml reads the same keys).
    The file names inside each folder are fixed by the properties below."""

    raw: str  # the export ingest reads: the simulator's by default, yours when you set it
    sim: str  # simulate: export/ (contract tables) and truth/ (never an input)
    interim: str  # ingest: <table>.parquet, _manifest.json, quarantine/<table>.parquet
    observations: str  # observe: observations.parquet
    features: str  # features: features.parquet, feature_meta.json
    models: str  # train: churn/ (production), split/ (test metrics), test predictions, summary
    evaluation: str  # evaluate: metrics.json, plots/ (DVC metrics and plots, MLflow artifacts)
    registered: str  # register: which model was registered (a file; no run ids)
    report: str  # report: the retention report (figures, cohorts, projection, PNGs, summary.md)
    score: str  # score: the pipeline's own scoring of its export (model file, no run ids)
    weekly: str  # the weekly job (outside DVC): interim/ of each new export, scores/<as_of>/

    def __post_init__(self) -> None:
        outs = {key: Path(getattr(self, key)).resolve() for key in OUTPUT_KEYS}
        outs["registered"] = Path(self.registered).resolve()
        for a, pa_ in outs.items():
            for b, pb in outs.items():
                if (a, b) == ("weekly", "interim") and pb == pa_ / "interim":
                    continue  # the weekly job's own ingest (pipeline.stages.score.weekly_paths)
                if a != b and (pa_ == pb or pb.is_relative_to(pa_)):
                    raise ConfigError(a, f"{getattr(self, a)} holds paths.{b} ({getattr(self, b)}): "
                                      "each stage needs a folder of its own")
        raw = Path(self.raw).resolve()
        for key, out in outs.items():
            if raw == out or out.is_relative_to(raw) or (
                    raw.is_relative_to(out) and not self.raw_is_simulated):
                raise ConfigError("raw", f"{self.raw} overlaps paths.{key} ({getattr(self, key)}): "
                                  "keep your export apart from the pipeline's outputs, which are "
                                  "replaced on every run")

    @property
    def sim_export(self) -> Path:
        return Path(self.sim) / "export"

    @property
    def sim_truth(self) -> Path:
        return Path(self.sim) / "truth"

    @property
    def raw_is_simulated(self) -> bool:
        return Path(self.raw).resolve() == self.sim_export.resolve()

    @property
    def manifest(self) -> Path:
        return Path(self.interim) / "_manifest.json"

    @property
    def quarantine(self) -> Path:
        return Path(self.interim) / "quarantine"

    @property
    def observations_table(self) -> Path:
        return Path(self.observations) / "observations.parquet"

    @property
    def features_table(self) -> Path:
        return Path(self.features) / "features.parquet"

    @property
    def feature_meta(self) -> Path:
        return Path(self.features) / "feature_meta.json"

    @property
    def model(self) -> Path:
        """The production model: refit on every labelled point."""
        return Path(self.models) / "churn"

    @property
    def split_model(self) -> Path:
        """The model fit before the test slice: the one the test metrics are about."""
        return Path(self.models) / "split"

    @property
    def predictions(self) -> Path:
        return Path(self.models) / "test_predictions.parquet"

    @property
    def train_summary(self) -> Path:
        return Path(self.models) / "train_summary.json"

    @property
    def metrics(self) -> Path:
        """The headline figures (DVC metrics, MLflow metrics)."""
        return Path(self.evaluation) / "metrics.json"

    @property
    def metrics_detail(self) -> Path:
        """Every metric with its interval, for all points and per kind (an artifact)."""
        return Path(self.evaluation) / "metrics_detail.json"

    @property
    def plots(self) -> Path:
        return Path(self.evaluation) / "plots"


@dataclass(frozen=True)
class MlflowParams:
    experiment: str
    model_name: str


@dataclass(frozen=True)
class Params:
    paths: Paths
    data: IngestConfig
    simulate: SimulateConfig
    labels: LabelConfig
    features: FeatureConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    mlflow: MlflowParams
    report: ReportConfig
    score: ScoreConfig


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ParamsError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        return {k: _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ParamsError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is Any:
        return value
    raise ParamsError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{where or 'top level'}: unknown key(s) {unknown}; expected "
                          f"{sorted(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"{key}: missing")
            continue
        values[name] = _convert(raw[name], hints[name], key)
    try:
        return cls(**values)
    except ConfigError as err:  # a range check of the config itself
        raise ParamsError(f"{where}.{err.key}: {err.detail}") from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a folder; --params takes a params file (params.yaml)"
                          ) from None
    except (UnicodeDecodeError, OSError) as err:
        raise ParamsError(f"{path}: cannot read it: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        raise ParamsError(f"{path}: the file is empty; it needs the sections "
                          f"{[f.name for f in dataclasses.fields(Params)]} (see the project's "
                          "params.yaml)")
    try:
        params = _build(Params, raw, "")
        _consistent(params)
        return params
    except ParamsError as err:
        raise ParamsError(f"{path}: {str(err).lstrip('.')}") from None


def _consistent(params: Params) -> None:
    """Checks across sections."""
    grace = params.simulate.world.business_grace_days
    if params.paths.raw_is_simulated and params.labels.grace_days < grace:
        raise ParamsError(
            f"labels.grace_days: {params.labels.grace_days} is shorter than the simulated "
            f"business's own grace (simulate.world.business_grace_days {grace}): a late payment "
            "would count as a churn. On your own export, set it to at least your grace period.")


def replace(config: Any, where: str, **changes: Any) -> Any:
    """A config with some fields changed (command-line flags), checked like params.yaml."""
    try:
        return dataclasses.replace(config, **changes)
    except ConfigError as err:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in changes)
        raise ParamsError(f"{flags}: {where}.{err.key}: {err.detail}") from None


def as_dict(obj: Any) -> Any:
    """Plain dict of a params dataclass, for manifests and MLflow (dates as ISO strings)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
