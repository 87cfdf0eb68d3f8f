"""`params.yaml`, read once at the edge into frozen dataclasses and passed down.

The only module of the project that imports yaml. Unknown or missing keys stop with an
error naming the file and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ParamsError(ValueError):
    pass


@dataclass(frozen=True)
class Paths:
    raw: str  # the export ingest reads: the simulator's by default, yours when you set it
    sim: str  # the simulator's world: export/ (contract tables) and truth/ (never an input)
    interim: str
    quarantine: str
    processed: str
    models: str  # trained models and their test-slice predictions
    reports: str  # metrics.json and plots (git-tracked, small)

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
    def observations(self) -> Path:
        return Path(self.processed) / "observations.parquet"

    @property
    def features(self) -> Path:
        return Path(self.processed) / "features.parquet"

    @property
    def feature_meta(self) -> Path:
        return Path(self.processed) / "feature_meta.json"

    @property
    def model(self) -> Path:
        """The production model: refit on every labelled point (DVC-tracked)."""
        return Path(self.models) / "churn"

    @property
    def split_model(self) -> Path:
        """The model fit before the test slice: the one the test metrics are about."""
        return Path(self.models) / "split"

    @property
    def predictions(self) -> Path:
        return Path(self.models) / "test_predictions.parquet"

    @property
    def registered(self) -> Path:
        """What `register` did, without run ids (the register stage's DVC output)."""
        return Path(self.models) / "registered.json"

    @property
    def reports_dir(self) -> Path:
        return Path(self.reports)

    @property
    def metrics(self) -> Path:
        return self.reports_dir / "metrics.json"

    @property
    def plots(self) -> Path:
        return self.reports_dir / "plots"

    @property
    def train_summary(self) -> Path:
        return Path(self.models) / "train_summary.json"


@dataclass(frozen=True)
class DataParams:
    timezone: str
    calendar: Literal["gregorian", "jalali"]
    as_of: dt.date | None
    max_bad_share: float
    rename: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelParams:
    horizon_days: int
    grace_days: int
    every_days: int
    min_tenure_days: int
    early_life_days: int


@dataclass(frozen=True)
class FeatureParams:
    engine: Literal["duckdb", "spark"]
    window_days: int  # the trailing window (and the first-N-days block)
    recent_days: int  # the recent part of it (trends, tickets_30)


@dataclass(frozen=True)
class TrainParams:
    seed: int
    kinds: tuple[str, ...]  # which observation points the model learns from
    test_days: int  # newest slice, counted back from the last labelled date
    calibration_days: int  # the slice before it: calibration and early stopping
    calibration: Literal["isotonic", "sigmoid"]
    oof_folds: int  # time folds for the production model's calibrator
    rounds: int
    early_stopping: int
    lgbm: dict[str, Any]  # handed to lightgbm.train untouched (seed and determinism added)
    logistic_c: float
    # the optional peer: sklearn HistGradientBoostingClassifier's arguments; null skips it
    hist_gradient_boosting: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvaluateParams:
    resamples: int  # customer bootstrap resamples for the intervals
    seed: int
    shap_sample: int  # points whose contributions the SHAP summary shows
    top_features: int  # churn rate by decile for this many top features


@dataclass(frozen=True)
class MlflowParams:
    experiment: str
    model_name: str


@dataclass(frozen=True)
class PlanParams:
    name: str
    fee: float
    period_days: int
    churn_logit: float  # effect on the churn logit at renewal
    share: float  # share of new customers starting on this plan


@dataclass(frozen=True)
class ChannelParams:
    name: str
    share: float  # share of organic sign-ups (referred customers get channel 'referral')
    churn_logit: float


@dataclass(frozen=True)
class WorldParams:
    """The simulated business. Frozen once model work starts: never tuned to flatter a model."""

    growth_per_year: float
    nowruz_dip: float
    weekly_seasonality: float
    engagement_sd: float
    settle_shift_sd: float
    settle_days: float
    daily_sd: float
    size_log_sd: float
    active_day_logit: float
    active_day_slope: float
    batches_per_active_day: float
    messages_log_mean: float
    messages_log_sd: float
    price_per_message: float
    topup_days_of_use: float
    topup_log_sd: float
    ticket_base_per_day: float
    ticket_engagement_slope: float
    billing_issue_start: float
    billing_issue_stay: float
    delivery_issue_start: float
    delivery_issue_stay: float
    issue_ticket_per_day: float
    resolve_days: float
    referral_per_day: float
    referral_engagement_slope: float
    nps_first_day: int
    nps_every_days: int
    nps_response_rate: float
    nps_engagement_slope: float
    nps_sd: float
    churn_intercept: float
    churn_engagement: float
    churn_billing_issue: float
    churn_delivery_issue: float
    churn_onboarding: float
    onboarding_days: int
    churn_referred: float
    churn_referrer: float
    churn_noise_floor: float
    cancel_share: float
    business_grace_days: int
    reactivation_share: float
    reactivation_mean_days: float
    plan_upgrade_slope: float
    plan_change_rate: float
    plans: tuple[PlanParams, ...]
    channels: tuple[ChannelParams, ...]
    # Non-additive laws, 0 unless a world sets them (worlds/c.yaml): extra logit slope on
    # min(z, 0); extra logit for an open problem during onboarding; extra logit per unit of
    # log(fee / cheapest fee) times max(-z, 0).
    churn_disengaged: float = 0.0
    churn_onboarding_problem: float = 0.0
    churn_overpay: float = 0.0


@dataclass(frozen=True)
class SimulateParams:
    seed: int
    customers: int
    start: dt.date
    days: int
    format: Literal["csv", "parquet"]
    string_ids: bool
    truth_samples: int
    world: WorldParams


@dataclass(frozen=True)
class Params:
    paths: Paths
    data: DataParams
    simulate: SimulateParams
    labels: LabelParams
    features: FeatureParams
    train: TrainParams
    evaluate: EvaluateParams
    mlflow: MlflowParams


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
        raise ParamsError(f"{where}: unknown key(s) {unknown}")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"{key}: missing")
            continue
        values[name] = _convert(raw[name], hints[name], key)
    return cls(**values)


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    try:
        return _build(Params, raw, "")
    except ParamsError as err:
        raise ParamsError(f"{path}: {str(err).lstrip('.')}") from None


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
