"""The world's laws, in one place so the simulation and the truth re-simulation share them.

Churn at a renewal, plan changes, and how engagement and the two service problems move
over any number of days (exact n-step laws, so the truth can jump from renewal to renewal).
"""

from __future__ import annotations

import numpy as np

from common import exact
from simulator.config import WorldConfig


def sigmoid(x: np.ndarray) -> np.ndarray:
    return exact.sigmoid(x)


class Rules:
    """The world's laws, shared by the simulation and the truth re-simulation."""

    def __init__(self, w: WorldConfig) -> None:
        self.w = w
        self.plan_len = np.array([p.period_days for p in w.plans], dtype=np.int64)
        self.plan_fee = np.array([p.fee for p in w.plans], dtype=np.float64)
        self.plan_logit = np.array([p.churn_logit for p in w.plans])
        # how much dearer than the cheapest plan, on a log scale (0 for the cheapest); only
        # the overpay law uses it (WorldConfig makes sure every fee is then above 0)
        self.plan_premium = np.zeros(len(self.plan_fee))
        if w.churn_overpay:
            self.plan_premium = exact.log(self.plan_fee / self.plan_fee.min())
        self.channel_logit = np.array([c.churn_logit for c in w.channels] + [0.0])
        # two-state problem chains: stationary share and the decay of the initial state
        self.issue = {
            "billing": (w.billing_issue_start, w.billing_issue_stay),
            "delivery": (w.delivery_issue_start, w.delivery_issue_stay),
        }

    def churn_probability(self, z, billing, delivery, tenure, plan, channel, referred, referrer,
                          day):
        """`referrer`: had referred someone before the period being renewed began; `day`: the
        renewal's day after the start (the drifting base rate's clock)."""
        w = self.w
        onboarding = tenure <= w.onboarding_days
        logit = (
            w.churn_intercept
            + w.churn_engagement * z
            + w.churn_billing_issue * billing
            + w.churn_delivery_issue * delivery
            + w.churn_onboarding * onboarding
            + self.plan_logit[plan]
            + self.channel_logit[channel]
            + w.churn_referred * referred
            + w.churn_referrer * referrer
        )
        # the non-additive laws (all 0 in the frozen worlds, which stay bit-identical)
        if w.churn_disengaged or w.churn_onboarding_problem or w.churn_overpay:
            logit = (
                logit
                + w.churn_disengaged * np.minimum(z, 0.0)
                + w.churn_onboarding_problem * (onboarding & ((billing > 0) | (delivery > 0)))
                + w.churn_overpay * self.plan_premium[plan] * np.maximum(-z, 0.0)
            )
        if w.churn_drift_per_year:  # 0 in the frozen worlds, which stay bit-identical
            logit = logit + w.churn_drift_per_year * (np.asarray(day, dtype=np.float64) / 365.0)
        return w.churn_noise_floor + (1.0 - w.churn_noise_floor) * sigmoid(logit)

    def next_plan(self, plan, z, u_change, u_up):
        """Plan at a renewal: most keep theirs; engaged customers upgrade, others downgrade."""
        change = u_change < self.w.plan_change_rate
        up = u_up < sigmoid(self.w.plan_upgrade_slope * z)
        step = np.where(change, np.where(up, 1, -1), 0)
        return np.clip(plan + step, 0, len(self.plan_len) - 1)

    def engagement_after(self, z, target, steps, eps):
        """Engagement `steps` days later: it settles towards the customer's own level.

        An Ornstein-Uhlenbeck walk in daily steps, drawn here from its exact n-step law.
        """
        rho = 1.0 - 1.0 / self.w.settle_days
        decay = exact.power(rho, steps)
        sd = self.w.daily_sd * np.sqrt((1.0 - decay**2) / (1.0 - rho**2))
        return target + (z - target) * decay + sd * eps

    def issue_after(self, name, state, steps, u):
        """Problem state `steps` days later, drawn from the exact n-step chain."""
        start, stay = self.issue[name]
        lam = stay - start
        pi = start / (1.0 - lam)
        p_on = pi + (state - pi) * exact.power(lam, steps)
        return u < p_on
