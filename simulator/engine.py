"""A simulated SMS-panel business: the tables it would export, and the truth behind them.

Customers sign up over the simulated span (growth, a dip around Nowruz, quiet Fridays).
Each has a hidden engagement `z` that settles day by day from where it started towards the
customer's own level (rising or fading through the first months, plus daily noise), and
two hidden service problems (billing, delivery) that come and go as Markov chains. `z`
drives how regularly they send messages, how much credit they top up, how often they
complain, refer friends and what they answer in NPS surveys (activity.py); the problems
drive billing and delivery tickets and spoil NPS. At each renewal the customer leaves with
probability `Rules.churn_probability(...)` of the hidden state the day before (rules.py):
low engagement, open problems, early tenure (onboarding), plan and channel raise it; having
been referred, and having referred someone (seed 003: a customer who recommends the product
is unlikely to leave), lower it; a noise floor keeps the problem honest. These effects add
up on the logit scale; optional non-additive laws (a steeper slope for disengaged customers,
problems that hurt more during onboarding, low engagement on a dear plan) make worlds where
the effects interact.

A kept renewal is paid late with probability `late_payer_share`: the next period starts
k days (1..business_grace_days) after the old one ended, the customer staying active
meanwhile, so a renewal still pending in the grace window does not give churn away.

Truth (definitions.md): for every observation point (features/observations.py: a customer
at risk at t, on the grid of the run's start shifted by the customer's phase) and for the
scoring points at the export date, P(label = 1 | hidden state at the start of day t),
computed by re-simulating the hidden state forward from t (truth.py: `truth_samples` paths,
the same rules as the world itself, decisions integrated out exactly, a renewal due on t
included). At risk at t are the active customers whose run started before t (a renewal due
on t, and a late payer whose next period has not started, included) and the customers whose
renewal refused as a lapse is still pending (period_end < t <= period_end + grace_days of
the labels): their truth is 1, the refusal being part of the hidden state. Where a pending
old run and a new run (a reactivation) both have a point on a day, only the new run's
exists. The truth uses its own random stream, so the exported world does not depend on the
label params.

The simulation steps all customers together one day at a time (vectorised over customers;
referrals need the whole active pool) and streams events to the sink a month at a time
(export.py), so memory grows with customers, not with events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import jdatetime
import numpy as np

from common import exact
from features.config import LabelConfig
from features.observations import EARLY_LIFE, NONE, SCORING, grid_kind, phase
from simulator.activity import FRIDAY, day_events
from simulator.config import REFERRAL, SimulateConfig, WorldConfig
from simulator.events import Events
from simulator.export import CANCELLED, LAPSED, OPEN, RENEWED, Export, Sink, referral_codes
from simulator.rules import Rules
from simulator.truth import churn_within_horizon

FLUSH_DAYS = 32
NOWRUZ_DAYS = 13  # the new-year holidays: 1-13 Farvardin

NOT_YET, ACTIVE, CHURNED, GONE = 0, 1, 2, 3
NEVER = np.iinfo(np.int64).max // 2


@dataclass
class SimSummary:
    customers: int
    referred: int
    periods: int
    churned_periods: int
    reactivations: int
    rows: dict[str, int]
    truth_points: int
    late_renewals: int
    as_of: dt.date
    mean_truth_early_life: float


def _signup_days(n: int, start: dt.date, days: int, w: WorldConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sign-up day of each customer (sorted) and the expected sign-ups of each day."""
    d = np.arange(days)
    intensity = exact.exp(exact.log1p(w.growth_per_year) * d / 365.0)
    dates = [start + dt.timedelta(days=int(i)) for i in d]
    weekday = np.array([x.weekday() for x in dates])
    intensity = intensity * np.where(weekday == FRIDAY, w.weekly_seasonality, 1.0)
    for year in range(start.year - 1, start.year + days // 365 + 2):
        nowruz = jdatetime.date(year - 621, 1, 1).togregorian()
        off = (nowruz - start).days
        lo, hi = max(off, 0), min(off + NOWRUZ_DAYS, days)
        if lo < hi:
            intensity[lo:hi] *= 1.0 - w.nowruz_dip
    share = intensity / intensity.sum()
    counts = rng.multinomial(n, share)
    return np.repeat(d, counts), n * share


def simulate(
    config: SimulateConfig,
    labels: LabelConfig,
    sink: Sink,
    progress: Callable[[int, int], None] | None = None,
) -> SimSummary:
    """Simulate the world and stream its export (and truth) into `sink`.

    `progress(day, days)` is called every 30 simulated days and at the end.
    """
    w = config.world
    days, truth_samples = config.days, config.truth_samples
    rules = Rules(w)
    rng = np.random.Generator(np.random.PCG64(config.seed))
    truth_rng = np.random.Generator(np.random.PCG64([config.seed, 1]))
    n = config.customers
    export = Export(sink, np.datetime64(config.start.isoformat(), "s"), days, config.string_ids)

    # Traits, fixed at sign-up. Customers are indexed in sign-up order.
    signup, expected_arrivals = _signup_days(n, config.start, days, w, rng)
    plan_share = np.array([p.share for p in w.plans])
    plan = rng.choice(len(w.plans), size=n, p=plan_share / plan_share.sum()).astype(np.int64)
    ch_share = np.array([c.share for c in w.channels])
    channel = rng.choice(len(w.channels), size=n, p=ch_share / ch_share.sum()).astype(np.int64)
    referral_channel = len(w.channels)  # the extra channel "referral"
    z = rng.normal(0.0, w.engagement_sd, n)
    settle = z + rng.normal(0.0, w.settle_shift_sd, n)  # where each customer's engagement heads
    size = exact.exp(rng.normal(0.0, w.size_log_sd, n))
    referrer = np.full(n, -1, dtype=np.int64)
    first_referral = np.full(n, NEVER, dtype=np.int64)  # the day of one's first referral made

    status = np.full(n, NOT_YET, dtype=np.int8)
    billing = np.zeros(n, dtype=bool)
    delivery = np.zeros(n, dtype=bool)
    run_start = np.zeros(n, dtype=np.int64)
    period_start = np.zeros(n, dtype=np.int64)
    period_end = np.zeros(n, dtype=np.int64)
    balance = np.zeros(n)
    next_nps = np.zeros(n, dtype=np.int64)
    react_day = np.full(n, -1, dtype=np.int64)
    lapse_end = np.full(n, -NEVER, dtype=np.int64)  # end of the latest renewal refused as a lapse
    lapse_run = np.zeros(n, dtype=np.int64)  # the start of the run that lapse ended
    renewed_end = np.full(n, -1, dtype=np.int64)  # end of the latest period renewed
    # each customer's grid phase, from the ids exactly as exported (the product's own rule)
    ph = phase(export.id_values(np.arange(n)).tolist(), labels.every_days)

    periods: list[tuple[np.ndarray, ...]] = []  # (customer, start, end, plan, outcome code)
    truth_parts: list[tuple[np.ndarray, ...]] = []  # (customer, day, kind code, truth)
    events = Events()
    reactivations = late_renewals = 0
    first_of_day = np.searchsorted(signup, np.arange(days + 1), side="left")

    def start_run(idx: np.ndarray, day: int) -> None:
        status[idx] = ACTIVE
        run_start[idx] = day
        period_start[idx] = day
        period_end[idx] = day + rules.plan_len[plan[idx]]
        next_nps[idx] = day + w.nps_first_day

    def at_risk(day: int, scoring: bool) -> tuple[np.ndarray, ...]:
        """The points of `day` at the start of the day: active runs started before it, and
        runs whose lapse is still pending; grid points only unless `scoring` (all of them,
        kind SCORING). Where both runs of a customer have one (scoring points only: a
        reactivated run has no grid point in its first grace_days days), the active (newer)
        run's."""
        act = np.flatnonzero((status == ACTIVE) & (run_start < day))
        pend = np.flatnonzero((lapse_end < day) & (day <= lapse_end + labels.grace_days))
        kinds = []
        for idx, start in ((act, run_start), (pend, lapse_run)):
            if scoring:
                kinds.append(np.full(len(idx), SCORING, dtype=np.int8))
            else:
                kinds.append(grid_kind(day - start[idx], ph[idx], every_days=labels.every_days,
                                       min_tenure_days=labels.min_tenure_days,
                                       early_life_days=labels.early_life_days,
                                       grace_days=labels.grace_days,
                                       reactivated=start[idx] != signup[idx]))
        k_act, k_pend = kinds
        act, k_act = act[k_act != NONE], k_act[k_act != NONE]
        keep = (k_pend != NONE) & ~np.isin(pend, act)
        return act, k_act, pend[keep], k_pend[keep]

    def state(idx: np.ndarray, day: int) -> tuple[np.ndarray, ...]:
        """What the truth needs of the hidden state of `idx` (copies: steps 1-3 move it)."""
        known = np.where(first_referral[idx] < day, first_referral[idx], NEVER)
        return (z[idx], settle[idx], billing[idx], delivery[idx], period_start[idx],
                period_end[idx], run_start[idx], plan[idx], channel[idx], referrer[idx] >= 0,
                known)

    def snapshot(day: int, points: tuple[np.ndarray, ...], hidden: tuple[np.ndarray, ...],
                 kappa: float) -> None:
        act, k_act, pend, k_pend = points
        if len(act):
            truth = churn_within_horizon(rules, truth_rng, truth_samples, day,
                                         labels.horizon_days, *hidden, kappa)
            truth_parts.append((act, np.full(len(act), day), k_act, truth))
        if len(pend):  # the refusal is known to the hidden state: the label is 1
            truth_parts.append((pend, np.full(len(pend), day), k_pend, np.ones(len(pend))))

    for day in range(days):
        hi = first_of_day[day + 1]  # customers signed up on or before `day`
        st = status[:hi]

        # 0. today's observation points: the hidden state at the start of the day, before
        # today's renewals are decided (their truth is computed once today's kappa is known)
        points = at_risk(day, scoring=False)
        hidden = state(points[0], day)

        # 1. renewals due today, decided on yesterday's hidden state
        due = np.flatnonzero((st == ACTIVE) & (period_end[:hi] == day))
        if len(due):
            p = rules.churn_probability(z[due], billing[due], delivery[due],
                                        day - run_start[due], plan[due], channel[due],
                                        referrer[due] >= 0,
                                        first_referral[due] < period_start[due], day)
            churn = rng.random(len(due)) < p
            cancel = rng.random(len(due)) < w.cancel_share
            outcome = np.where(churn, np.where(cancel, CANCELLED, LAPSED), RENEWED)
            periods.append((due, period_start[due], period_end[due], plan[due], outcome))
            gone, kept = due[churn], due[~churn]
            lapsed = due[churn & ~cancel]
            lapse_end[lapsed] = day
            lapse_run[lapsed] = run_start[lapsed]
            status[gone] = CHURNED
            back = rng.random(len(gone)) < w.reactivation_share
            wait = 1 + rng.exponential(w.reactivation_mean_days, len(gone)).astype(np.int64)
            react_day[gone] = np.where(back, day + wait, -1)
            status[gone[~back]] = GONE
            plan[kept] = rules.next_plan(plan[kept], z[kept], rng.random(len(kept)),
                                         rng.random(len(kept)))
            late = np.zeros(len(kept), dtype=np.int64)
            if w.late_payer_share > 0 and w.business_grace_days > 0:
                # paid k days late: still active in the grace days, the next period starts later
                late = np.where(rng.random(len(kept)) < w.late_payer_share,
                                rng.integers(1, w.business_grace_days + 1, len(kept)), 0)
                late_renewals += int((late > 0).sum())
            renewed_end[kept] = day
            period_start[kept] = day + late
            period_end[kept] = day + late + rules.plan_len[plan[kept]]

        # 2. win-backs: a churned customer starts a new run (a new observation history)
        back = np.flatnonzero((st == CHURNED) & (react_day[:hi] == day))
        if len(back):
            reactivations += len(back)
            start_run(back, day)

        # 3. sign-ups; some arrive through an active customer's referral link
        new = np.arange(first_of_day[day], hi)
        pool = np.flatnonzero(status[:hi] == ACTIVE)
        rate = w.referral_per_day * exact.exp(w.referral_engagement_slope * z[pool])
        # referred share = referral pressure / (referral pressure + the day's organic pull),
        # both proportional to the size of the business, so the world is scale-free; a
        # customer's expected referrals a day are rate * kappa
        pressure = rate.sum()
        kappa = expected_arrivals[day] / (pressure + expected_arrivals[day])
        if len(new):
            m = int(rng.binomial(len(new), 1.0 - kappa))
            if m:
                chosen = rng.choice(len(new), size=m, replace=False)
                who = pool[rng.choice(len(pool), size=m, p=rate / pressure)]
                referrer[new[chosen]] = who
                first_referral[who] = np.minimum(first_referral[who], day)
                channel[new[chosen]] = referral_channel
            start_run(new, day)

        # 4. truth for today's observation points (the state taken in step 0)
        snapshot(day, points, hidden, kappa)

        # 5. the hidden state moves one day
        live = np.flatnonzero(status[:hi] != GONE)
        z[live] = rules.engagement_after(z[live], settle[live], 1, rng.standard_normal(len(live)))
        for name, arr in (("billing", billing), ("delivery", delivery)):
            arr[live] = rules.issue_after(name, arr[live], 1, rng.random(len(live)))

        # 6. what active customers do today
        act = np.flatnonzero(status[:hi] == ACTIVE)
        day_events(day, act, rules, rng, z, size, billing, delivery, balance, next_nps,
                   t0_weekday=config.start.weekday(), events=events)
        if (day + 1) % FLUSH_DAYS == 0:
            export.flush(events)
        if progress and ((day + 1) % 30 == 0 or day + 1 == days):
            progress(day + 1, days)
    export.flush(events)

    # the export is taken at day `days`: the scoring points, open periods, the customers
    points = at_risk(days, scoring=True)
    snapshot(days, points, state(points[0], days), kappa)
    act = np.flatnonzero(status == ACTIVE)
    started = act[period_start[act] < days]
    periods.append((started, period_start[started], period_end[started], plan[started],
                    np.full(len(started), OPEN)))
    # a late payer whose next period has not started: that period is not in the export, and
    # the renewal of the last one is not known yet
    waiting = act[period_start[act] >= days]
    n_periods, n_churned = export.subscriptions(periods, rules,
                                                still_open=(waiting, renewed_end[waiting]))
    channel_names = np.array([c.name for c in w.channels] + [REFERRAL], dtype=object)
    export.customers(signup, channel, channel_names, referrer, referral_codes(rng, n))
    kind, truth = export.truth(truth_parts)
    early = kind == EARLY_LIFE
    return SimSummary(
        customers=n, referred=int((referrer >= 0).sum()), periods=n_periods,
        churned_periods=n_churned, reactivations=reactivations,
        rows={"usage": events.usage.rows, "charges": events.charges.rows,
              "tickets": events.tickets.rows, "nps": events.nps.rows,
              "subscriptions": n_periods, "customers": n},
        truth_points=len(truth), late_renewals=late_renewals, as_of=config.start + dt.timedelta(days=days),
        mean_truth_early_life=exact.round_sig(truth[early].mean()) if early.any() else float("nan"),
    )
