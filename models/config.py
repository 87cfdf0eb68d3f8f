"""The `train` and `evaluate` sections: frozen, range-checked when params.yaml is read.

The pipeline's loader builds these from YAML (types by annotation) and prefixes the file and
section to a ConfigError's key; `check` here says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.errors import check

KINDS = ("young", "early_life", "ongoing")  # the observation points a model can learn from
MAX_SEED = 2**31 - 1  # LightGBM's seed is a C int


def _check_seed(seed: int) -> None:
    check(0 <= seed <= MAX_SEED, "seed", f"must be between 0 and {MAX_SEED}, not {seed}")


@dataclass(frozen=True)
class TrainConfig:
    """Out-of-time fitting: slices, the LightGBM model and its calibration, the baselines."""

    seed: int
    kinds: tuple[str, ...]  # which observation points the model learns from
    test_days: int  # newest slice, counted back from the last labelled date
    calibration_days: int  # the slice before it: calibration and early stopping
    calibration: Literal["isotonic", "sigmoid"]
    oof_folds: int  # time folds for the production model's calibrator
    rounds: int
    early_stopping: int
    lgbm: dict[str, Any]  # handed to lightgbm.train (objective default, seed and determinism added)
    logistic_c: float
    # the optional peer: sklearn HistGradientBoostingClassifier's arguments; None skips it
    hist_gradient_boosting: dict[str, Any] | None = None
    # the drift reference frozen with the model: customers at risk on the days this far back
    reference_days: int = 182
    # the production model's level (models.level): none (the pooled calibrator's), recent (the
    # latest level_days labelled days'), trend (a line through level_windows such windows,
    # read at the scoring day), blend (recent and trend by the inverse of their errors' variance)
    level: Literal["none", "recent", "trend", "blend"] = "blend"
    level_days: int = 56
    level_windows: int = 6

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        check(self.level in ("none", "recent", "trend", "blend"), "level",
              f"must be none, recent, trend or blend, not {self.level!r}")
        check(7 <= self.level_days <= 365, "level_days",
              f"must be 7 to 365 days (a recent window of labelled points, at least a week), "
              f"not {self.level_days}")
        check(self.level_windows >= 3, "level_windows",
              f"must be at least 3 (a line through fewer says little), not {self.level_windows}")
        check(self.reference_days >= 7, "reference_days",
              f"must be at least 7 days (one of each weekday), not {self.reference_days}")
        unknown = [k for k in self.kinds if k not in KINDS]
        check(len(self.kinds) > 0 and not unknown, "kinds",
              f"must list one or more of {list(KINDS)}"
              + (f"; {unknown} are not point kinds" if unknown else ", not none"))
        check(len(set(self.kinds)) == len(self.kinds), "kinds",
              f"lists a kind twice: {list(self.kinds)}")
        check(self.test_days >= 1, "test_days", f"must be at least 1 day, not {self.test_days}")
        check(self.calibration_days > 0, "calibration_days",
              f"must be at least 1 day (and longer than labels.horizon_days, whose last days "
              f"are purged), not {self.calibration_days}")
        check(self.calibration in ("isotonic", "sigmoid"), "calibration",
              f"must be isotonic or sigmoid, not {self.calibration!r}")
        check(self.oof_folds >= 2, "oof_folds",
              f"must be at least 2 (the first fold only trains), not {self.oof_folds}")
        check(self.rounds >= 1, "rounds", f"must be at least 1 boosting round, not {self.rounds}")
        check(self.early_stopping >= 1, "early_stopping",
              f"must be at least 1 round without improvement, not {self.early_stopping}")
        check(self.logistic_c > 0, "logistic_c",
              f"must be above 0 (the inverse L1 penalty; smaller is sparser), not "
              f"{self.logistic_c}")
        check(isinstance(self.lgbm, dict), "lgbm", "must be a mapping of LightGBM parameters")
        from models import lgbm  # LightGBM's own names, types and ranges

        lgbm.check_params(self.lgbm)
        if self.hist_gradient_boosting is not None:
            check(isinstance(self.hist_gradient_boosting, dict), "hist_gradient_boosting",
                  "must be a mapping of HistGradientBoostingClassifier arguments, or null")
            from models import baselines

            baselines.check_peer_params(self.hist_gradient_boosting)


@dataclass(frozen=True)
class EvaluateConfig:
    """Test-slice metrics with customer-bootstrap intervals, and the explanation plots."""

    resamples: int  # customer bootstrap resamples for the intervals
    seed: int
    shap_sample: int  # points whose contributions the SHAP summary shows
    top_features: int  # churn rate by decile for this many top features
    # EMPC (Verbraken et al. 2013) assumes one customer lifetime value for all: in the
    # export's currency, next to score.offer_cost and score.contact_cost
    empc_clv: float = 4_000_000.0

    def __post_init__(self) -> None:
        check(self.empc_clv > 0, "empc_clv", f"must be above 0, not {self.empc_clv}")
        check(self.resamples >= 0, "resamples",
              f"must be 0 (no intervals) or more, not {self.resamples}")
        _check_seed(self.seed)
        check(self.shap_sample >= 1, "shap_sample",
              f"must be at least 1 point, not {self.shap_sample}")
        check(self.top_features >= 1, "top_features",
              f"must be at least 1 feature, not {self.top_features}")
