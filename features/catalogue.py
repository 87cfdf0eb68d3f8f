"""The feature catalogue: every model input, its family, window and meaning.

It is the contract between `features.windows` (which must produce exactly these columns),
the model (dtypes, categorical columns) and the reason codes (families, in business words).
`docs/features.md` is generated from it (`churn features --doc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from records.contract import TOPICS  # one list of ticket topics: the contract's

Family = Literal["usage", "charge", "tickets", "referrals", "nps", "subscription"]

TRAILING = "trailing 90 days"
FIRST90 = "first 90 days of the run"
AS_OF = "as of t"


@dataclass(frozen=True)
class Feature:
    name: str
    family: Family
    window: str
    meaning: str
    categorical: bool = False


CATALOGUE: tuple[Feature, ...] = (
    # usage, trailing window [max(t - 90 days, run start), t)
    Feature("window_days", "subscription", TRAILING,
            "days in the trailing window: 90, or the run's tenure for young points"),
    Feature("usage_messages", "usage", TRAILING, "messages sent (0 if none)"),
    Feature("usage_messages_per_day", "usage", TRAILING, "messages sent per window day"),
    Feature("usage_active_days", "usage", TRAILING, "days with at least one send"),
    Feature("usage_active_share", "usage", TRAILING, "active days / window days"),
    Feature("usage_recent_active_share", "usage", "trailing 30 days",
            "share of the last 30 days (fewer if the window is shorter) with a send"),
    Feature("usage_sends_per_active_day", "usage", TRAILING,
            "SMS batches per active day (0 if no active day)"),
    Feature("usage_trend", "usage", TRAILING,
            "(last L days - first L days) / (both) of messages, L = min(30, window/2); "
            "-1 = faded out, +1 = only recent, 0 if no messages"),
    Feature("usage_slope", "usage", TRAILING,
            "least-squares slope of daily messages (idle days count as 0), per 30 days, "
            "as a share of the mean; 0 if no messages"),
    Feature("usage_days_since_last", "usage", TRAILING,
            "days since the last send; window days if none in the window"),
    Feature("usage_longest_gap", "usage", TRAILING,
            "longest run of days without a send, edges included; window days if none"),
    # charge (credit top-ups)
    Feature("charge_topups", "charge", TRAILING, "credit top-ups (0 if none)"),
    Feature("charge_total", "charge", TRAILING, "amount topped up (0 if none)"),
    Feature("charge_mean", "charge", TRAILING, "mean top-up amount (0 if none)"),
    Feature("charge_days_since_last", "charge", TRAILING,
            "days since the last top-up; window days if none in the window"),
    Feature("charge_per_message", "charge", TRAILING,
            "amount topped up / max(messages sent, 1): high = credit left to burn"),
    # tickets
    *(Feature(f"tickets_{topic}", "tickets", TRAILING, f"{topic} tickets opened (0 if none)")
      for topic in TOPICS),
    Feature("tickets_30", "tickets", "trailing 30 days", "tickets of any topic opened"),
    Feature("tickets_problem_30", "tickets", "trailing 30 days",
            "billing and delivery tickets opened (complaints before leaving)"),
    Feature("tickets_unresolved", "tickets", AS_OF,
            "tickets opened in this run before t and not resolved before t"),
    Feature("tickets_days_since_last", "tickets", TRAILING,
            "days since the last ticket; window days if none in the window"),
    # referrals
    Feature("referrals_window", "referrals", TRAILING,
            "customers who signed up with this customer's referral code"),
    Feature("referrals_ever", "referrals", AS_OF, "all customers referred before t"),
    # NPS
    Feature("nps_last", "nps", AS_OF, "last NPS score (0-10) before t; missing if never"),
    Feature("nps_band", "nps", AS_OF,
            "0 never answered, 1 detractor (0-6), 2 passive (7-8), 3 promoter (9-10)",
            categorical=True),
    Feature("nps_answers", "nps", AS_OF, "survey answers before t"),
    # subscription
    Feature("plan_code", "subscription", AS_OF,
            "plan of the latest period that started before t; code, -1 unknown",
            categorical=True),
    Feature("fee", "subscription", AS_OF, "fee of that period"),
    Feature("days_to_renewal", "subscription", AS_OF,
            "days from t to that period's end (0 on the renewal day, or if it already ended)"),
    Feature("days_past_renewal", "subscription", AS_OF,
            "days since that period ended with no next period started before t: a renewal "
            "pending in the grace window (0 if the period has not ended)"),
    Feature("renewals_in_horizon", "subscription", AS_OF,
            "renewal dates in [t, t + horizon) if the period length stays the same"),
    Feature("tenure_days", "subscription", AS_OF, "days since the run started (signup or return)"),
    Feature("customer_age_days", "subscription", AS_OF, "days since signup"),
    Feature("periods_paid", "subscription", AS_OF, "billing periods started in this run by t"),
    Feature("reactivated", "subscription", AS_OF, "1 if this run is a return after a churn"),
    Feature("channel_code", "subscription", AS_OF, "acquisition channel; code, -1 unknown",
            categorical=True),
    Feature("was_referred", "referrals", AS_OF, "1 if the customer signed up with a referral code"),
    # the first 90 days of the run (for young and early-life points: what is seen so far)
    Feature("f90_messages_per_day", "usage", FIRST90, "messages per day"),
    Feature("f90_active_share", "usage", FIRST90, "share of days with a send"),
    Feature("f90_sends_per_active_day", "usage", FIRST90, "SMS batches per active day"),
    Feature("f90_trend", "usage", FIRST90, "last vs first month of messages, as usage_trend"),
    Feature("f90_topups", "charge", FIRST90, "credit top-ups"),
    Feature("f90_charge_total", "charge", FIRST90, "amount topped up"),
    Feature("f90_tickets", "tickets", FIRST90, "tickets of any topic"),
)

FEATURES: tuple[str, ...] = tuple(f.name for f in CATALOGUE)
CATEGORICAL: tuple[str, ...] = tuple(f.name for f in CATALOGUE if f.categorical)
FAMILY: dict[str, Family] = {f.name: f.family for f in CATALOGUE}


def render() -> str:
    lines = [
        "# Feature catalogue",
        "",
        "Generated from `features/catalogue.py` by `churn features --doc`; do not edit by hand.",
        "",
        "Every feature at an observation point `(customer, t)` uses events dated before `t` only",
        "(a day-level event on day `t` is excluded) and the subscription periods that started",
        "before `t`, never an outcome not yet known at `t` (definitions.md).",
        "The trailing window is `[max(t - 90 days, run start), t)`: a reactivated customer's",
        "history restarts at the return. Counts are 0 when there is no event; the value used",
        "when a ratio or a 'days since' has nothing to measure is stated in each line.",
        "Categorical features are integer codes (`-1` unknown); all others are float64.",
        "",
        "| feature | family | window | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{f.name}`{' (categorical)' if f.categorical else ''} | {f.family} | {f.window} "
        f"| {f.meaning} |"
        for f in CATALOGUE
    ]
    return "\n".join(lines) + "\n"
