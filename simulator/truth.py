"""The truth behind an observation point: P(churn within the horizon | hidden state at t).

Computed by re-simulating the hidden state forward with the world's own `Rules`, on its
own random stream, so the exported world never depends on the label params.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from common import exact
from simulator.rules import Rules


def churn_within_horizon(rules: Rules, rng: np.random.Generator, samples: int, day: int,
                         horizon: int, z0, settle, billing0, delivery0, period_start, period_end,
                         run_start, plan, channel, referred, first_referral,
                         kappa: float) -> np.ndarray:
    """P(a renewal in [day, day + horizon) is refused | hidden state at the start of `day`).

    Re-simulates only what the decisions depend on (engagement, problems, plan, late payment,
    a first referral) from renewal to renewal; the decision coin itself is integrated out
    (survival = product of 1 - p). A renewal due on `day` itself counts (the state is the one
    at the start of the day, before it is decided); a late payer whose next period has not
    started yet comes with that (future) `period_start` and its `period_end`. A first
    referral still to come is drawn at today's referral rate, the one approximation here (it
    matters only for a second renewal inside the horizon).
    The `samples` paths use stratified draws shared by all points of the day (each point's
    estimate stays unbiased, with far less noise and work than independent draws).
    """
    out = np.empty(len(z0))
    normal = ndtri((np.arange(samples) + 0.5) / samples)

    def uniform() -> np.ndarray:
        return (rng.permutation(samples) + rng.random(samples)) / samples

    chunk = max(1, 2_000_000 // max(samples, 1))
    for lo in range(0, len(z0), chunk):
        sl = slice(lo, lo + chunk)
        shape = (len(z0[sl]), samples)
        z = np.broadcast_to(z0[sl, None], shape).copy()
        target = settle[sl, None]
        bill = np.broadcast_to(billing0[sl, None], shape).copy()
        deliv = np.broadcast_to(delivery0[sl, None], shape).copy()
        pl = np.broadcast_to(plan[sl, None], shape).copy()
        ch, ref, rs = channel[sl, None], referred[sl, None], run_start[sl, None]
        r = np.broadcast_to(period_end[sl, None], shape).copy()
        ps = np.broadcast_to(period_start[sl, None], shape).copy()
        hazard = rules.w.referral_per_day * kappa * exact.exp(
            rules.w.referral_engagement_slope * z0[sl, None])
        first_ref = np.where(first_referral[sl, None] < day, first_referral[sl, None],
                             day + (-exact.log(uniform()) / hazard))
        known = np.full(shape, day - 1)  # the last day whose state is known
        survive = np.ones(shape)
        while True:
            due = r < day + horizon
            if not due.any():
                break
            steps = np.maximum(r - 1 - known, 0)
            z = np.where(due, rules.engagement_after(z, target, steps, rng.permutation(normal)), z)
            bill = np.where(due, rules.issue_after("billing", bill, steps, uniform()), bill)
            deliv = np.where(due, rules.issue_after("delivery", deliv, steps, uniform()), deliv)
            p = rules.churn_probability(z, bill, deliv, r - rs, pl, ch, ref, first_ref < ps, r)
            survive = np.where(due, survive * (1.0 - p), survive)
            pl = np.where(due, rules.next_plan(pl, z, uniform(), uniform()), pl)
            known = np.where(due, r - 1, known)
            late = 0
            if rules.w.late_payer_share > 0 and rules.w.business_grace_days > 0:
                # a kept renewal paid k days late: the next period starts on r + k
                late = np.where(uniform() < rules.w.late_payer_share,
                                1 + (uniform() * rules.w.business_grace_days).astype(np.int64), 0)
            ps = np.where(due, r + late, ps)
            r = np.where(due, r + late + rules.plan_len[pl], r)
        out[sl] = 1.0 - survive.mean(axis=1)
    return out
