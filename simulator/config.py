"""The `simulate` section: the simulated business and how much of it to simulate.

Checked on construction, so a world the engine could not run (a share above 1, plan shares
that do not add up, a negative spread) stops with the key to change instead of NaNs or a
numpy error deep in the day loop. Only impossibilities are checked: odd but runnable
worlds are the user's business.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from common.errors import check

SHARE_TOLERANCE = 1e-9
REFERRAL = "referral"  # the channel of referred customers; no configured channel may use it
FORMATS = ("csv", "parquet")


def _share(value: float, key: str) -> None:
    check(0.0 <= value <= 1.0, key, f"is a share or probability: set it between 0 and 1, not {value}")


def _non_negative(value: float, key: str, what: str) -> None:
    check(value >= 0, key, f"is {what}: set it to 0 or more, not {value}")


def _shares_add_up(items: tuple[PlanConfig, ...] | tuple[ChannelConfig, ...], key: str) -> None:
    check(len(items) >= 1, key, "is empty: list at least one")
    total = sum(item.share for item in items)
    check(abs(total - 1.0) <= SHARE_TOLERANCE, key,
          f"shares sum to {total:.12g}, not 1: change them so they add up to 1")
    twice = sorted(name for name, n in Counter(item.name for item in items).items() if n > 1)
    check(not twice, key, f"name(s) {twice} appear more than once: give each a distinct name")


@dataclass(frozen=True)
class PlanConfig:
    """A subscription plan: what it costs, how long a period runs, who starts on it."""

    name: str
    fee: float
    period_days: int
    churn_logit: float  # effect on the churn logit at renewal
    share: float  # share of new customers starting on this plan

    def __post_init__(self) -> None:
        check(bool(self.name), "name", "is empty: name the plan")
        _non_negative(self.fee, "fee", "a price")
        check(self.period_days >= 1, "period_days", f"must be at least 1 day, not {self.period_days}")
        _share(self.share, "share")


@dataclass(frozen=True)
class ChannelConfig:
    """An acquisition channel of organic sign-ups."""

    name: str
    share: float  # share of organic sign-ups (referred customers get channel 'referral')
    churn_logit: float

    def __post_init__(self) -> None:
        check(bool(self.name), "name", "is empty: name the channel")
        check(self.name != REFERRAL, "name",
              f"'{REFERRAL}' is the channel of referred customers: call this one something else")
        _share(self.share, "share")


@dataclass(frozen=True)
class WorldConfig:
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
    plans: tuple[PlanConfig, ...]
    channels: tuple[ChannelConfig, ...]
    # Non-additive laws, 0 unless a world sets them (worlds/c.yaml): extra logit slope on
    # min(z, 0); extra logit for an open problem during onboarding; extra logit per unit of
    # log(fee / cheapest fee) times max(-z, 0).
    churn_disengaged: float = 0.0
    churn_onboarding_problem: float = 0.0
    churn_overpay: float = 0.0
    # Share of kept renewals paid late: the next period starts k days after the old one
    # ended, k uniform in 1..business_grace_days (service continues meanwhile).
    late_payer_share: float = 0.0
    # A usage shock, off unless a world sets it (for testing drift alarms): from day
    # `usage_shock_day` after the start on, every send carries `usage_shock_factor` times the
    # messages (and top-ups follow). Churn and everything else the customers do stay as they are.
    usage_shock_day: int | None = None
    usage_shock_factor: float = 1.0
    # A drifting base rate, 0 unless a world sets it (worlds/drift.yaml, for the backtest's
    # level targets): the churn logit at a renewal moves by this much per 365 days after the
    # start, the same for every customer, so the base rate drifts while who churns does not.
    churn_drift_per_year: float = 0.0

    def __post_init__(self) -> None:
        check(self.growth_per_year > -1.0, "growth_per_year",
              f"{self.growth_per_year} shrinks the business by 100 % or more a year: set it above -1")
        _share(self.nowruz_dip, "nowruz_dip")
        _non_negative(self.weekly_seasonality, "weekly_seasonality", "a multiplier of Friday activity")
        for key in ("engagement_sd", "settle_shift_sd", "daily_sd", "size_log_sd", "messages_log_sd",
                    "topup_log_sd", "nps_sd"):
            _non_negative(getattr(self, key), key, "a standard deviation")
        check(self.settle_days >= 1.0, "settle_days",
              f"must be at least 1 day (engagement moves in daily steps), not {self.settle_days}")
        check(self.batches_per_active_day >= 1.0, "batches_per_active_day",
              f"must be at least 1 (an active day sends at least one batch), "
              f"not {self.batches_per_active_day}")
        _non_negative(self.price_per_message, "price_per_message", "a price")
        _non_negative(self.topup_days_of_use, "topup_days_of_use", "a number of days")
        for key in ("ticket_base_per_day", "issue_ticket_per_day", "referral_per_day"):
            _non_negative(getattr(self, key), key, "a rate")
        for key in ("resolve_days", "reactivation_mean_days"):
            _non_negative(getattr(self, key), key, "a mean number of days")
        for problem in ("billing", "delivery"):
            start, stay = f"{problem}_issue_start", f"{problem}_issue_stay"
            _share(getattr(self, start), start)
            _share(getattr(self, stay), stay)
            check(getattr(self, stay) - getattr(self, start) < 1.0, stay,
                  f"a problem that never starts ({start} 0) and never ends ({stay} 1) has no "
                  f"steady state: lower {stay} below 1 or raise {start}")
        check(self.nps_first_day >= 0, "nps_first_day", f"must be 0 or more days, not {self.nps_first_day}")
        check(self.nps_every_days >= 1, "nps_every_days",
              f"must be at least 1 day, not {self.nps_every_days}")
        for key in ("nps_response_rate", "churn_noise_floor", "cancel_share", "reactivation_share",
                    "plan_change_rate", "late_payer_share"):
            _share(getattr(self, key), key)
        check(self.onboarding_days >= 0, "onboarding_days",
              f"must be 0 or more days, not {self.onboarding_days}")
        check(self.business_grace_days >= 0, "business_grace_days",
              f"must be 0 or more days, not {self.business_grace_days}")
        check(self.usage_shock_day is None or self.usage_shock_day >= 0, "usage_shock_day",
              f"is a day after the start: set it to 0 or more (or leave it out for no shock), "
              f"not {self.usage_shock_day}")
        check(0.0 < self.usage_shock_factor <= 1.0, "usage_shock_factor",
              f"multiplies the messages of each send from usage_shock_day on: set it above 0 "
              f"and at most 1 (1 = no shock), not {self.usage_shock_factor}")
        check(abs(self.churn_drift_per_year) <= 3.0, "churn_drift_per_year",
              f"moves the churn logit by {self.churn_drift_per_year} a year: keep it within "
              "[-3, 3] (3 turns a 5 % base rate into 50 % in a year)")
        _shares_add_up(self.plans, "plans")
        _shares_add_up(self.channels, "channels")
        # log(fee / cheapest fee) is the overpay law's premium: it needs every fee above 0
        check(not self.churn_overpay or min(p.fee for p in self.plans) > 0, "churn_overpay",
              "needs every plan's fee above 0 (it compares each fee with the cheapest): "
              "set it to 0 or give every plan a fee")


@dataclass(frozen=True)
class SimulateConfig:
    """How much of the world to simulate, from which seed, and in what shape to export it."""

    seed: int
    customers: int
    start: dt.date
    days: int
    format: Literal["csv", "parquet"]
    string_ids: bool
    truth_samples: int
    world: WorldConfig

    def __post_init__(self) -> None:
        check(self.seed >= 0, "seed", f"must be 0 or more (numpy seeds are unsigned), not {self.seed}")
        check(self.customers >= 1, "customers", f"must be at least 1, not {self.customers}")
        check(self.days >= 1, "days", f"must be at least 1 day, not {self.days}")
        check(self.format in FORMATS, "format", f"must be one of {list(FORMATS)}, not {self.format!r}")
        check(self.truth_samples >= 1, "truth_samples",
              f"must be at least 1 re-simulated path, not {self.truth_samples}")
        shock = self.world.usage_shock_day
        check(shock is None or shock < self.days, "world.usage_shock_day",
              f"day {shock} is not within the {self.days} simulated days: set it below {self.days}")
