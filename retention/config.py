"""The `report` settings, range-checked once so the library can trust them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.errors import check

PERIODS = ("month", "quarter", "year")


@dataclass(frozen=True)
class ReportConfig:
    """How the retention report is cut and projected (definitions.md: Retention figures)."""

    period: Literal["month", "quarter", "year"] = "month"
    discount_rate: float = 0.10  # per billing period of the plan's clock, for the DERL value
    horizon_periods: int = 12  # how many periods the sBG projection runs ahead
    min_cohort_size: int = 30  # fewer customers: no sBG fit, a reason instead
    min_cohort_periods: int = 3  # fewer observed renewals: no sBG fit, a reason instead
    holdout_months: int = 6  # the backtest fits on the export cut this many months earlier

    def __post_init__(self) -> None:
        check(self.period in PERIODS, "period", f"must be one of {', '.join(PERIODS)}, not {self.period!r}")
        check(0 <= self.discount_rate < 1, "discount_rate",
              f"must be in [0, 1) per period, not {self.discount_rate}")
        check(self.horizon_periods >= 1, "horizon_periods",
              f"must be at least 1 period, not {self.horizon_periods}")
        check(self.min_cohort_size >= 2, "min_cohort_size",
              f"must be at least 2 customers, not {self.min_cohort_size}")
        check(self.holdout_months >= 1, "holdout_months",
              f"must be at least 1 month, not {self.holdout_months}")
        # one period identifies only alpha / (alpha + beta): two are needed for both
        check(self.min_cohort_periods >= 2, "min_cohort_periods",
              f"must be at least 2 periods (sBG has two parameters), not {self.min_cohort_periods}")
