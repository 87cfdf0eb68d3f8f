"""A simulated SMS-panel business: the tables it would export, and the truth behind them.

Customers sign up over the simulated span (growth, a dip around Nowruz, quiet Fridays).
Each has a hidden engagement `z` that settles day by day from where it started towards the
customer's own level (rising or fading through the first months, plus daily noise), and
two hidden service problems (billing, delivery) that come and go as Markov chains. `z`
drives how regularly they send messages, how much credit they top up, how often they
complain, refer friends and what they answer in NPS surveys; the problems drive billing and
delivery tickets and spoil NPS. At each renewal the customer leaves with probability
`churn_probability(...)` of the hidden state the day before: low engagement, open problems,
early tenure (onboarding), plan and channel raise it; having been referred, and having referred
someone (seed 003: a customer who recommends the product is unlikely to leave), lower it; a
noise floor keeps the problem honest. These effects add up on the logit scale; optional
non-additive laws (a steeper slope for disengaged customers, problems that hurt more during
onboarding, low engagement on a dear plan) make worlds where the effects interact.

Truth (definitions.md): for every observation point the `labels` params define, and for the
scoring points at the export date, P(churn date in [t, t + horizon) | hidden state at t),
computed by re-simulating the hidden state forward from t (`truth_samples` paths, the same
`churn_probability` and transitions as the world itself, decisions integrated out exactly).
It uses its own random stream, so the exported world does not depend on the label params.

The simulation steps all customers together one day at a time (vectorised over customers;
referrals need the whole active pool) and streams events to the sink a month at a time,
so memory grows with customers, not with events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jdatetime
import numpy as np
import pyarrow as pa
from scipy.special import ndtri

from features.observations import EARLY_LIFE, KIND_NAMES, NONE, SCORING, grid_kind

TOPIC_BASE = ("technical", "account", "other", "billing", "delivery")
TOPIC_BASE_P = (0.45, 0.3, 0.17, 0.05, 0.03)
FRIDAY = 4
FLUSH_DAYS = 32
SECONDS_FROM, SECONDS_TO = 7 * 3600, 23 * 3600  # most sending happens 07:00-23:00

NOT_YET, ACTIVE, CHURNED, GONE = 0, 1, 2, 3
NEVER = np.iinfo(np.int64).max // 2


class Sink(Protocol):
    def append(self, table: str, batch: pa.Table) -> None: ...


@dataclass(frozen=True)
class LabelGrid:
    horizon_days: int
    every_days: int
    min_tenure_days: int
    early_life_days: int


@dataclass
class SimSummary:
    customers: int
    referred: int
    periods: int
    churned_periods: int
    reactivations: int
    rows: dict[str, int]
    truth_points: int
    as_of: dt.date
    mean_truth_early_life: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Rules:
    """The world's laws, shared by the simulation and the truth re-simulation."""

    def __init__(self, w) -> None:
        self.w = w
        self.plan_len = np.array([p.period_days for p in w.plans], dtype=np.int64)
        self.plan_fee = np.array([p.fee for p in w.plans], dtype=np.float64)
        self.plan_logit = np.array([p.churn_logit for p in w.plans])
        # how much dearer than the cheapest plan, on a log scale (0 for the cheapest); only
        # the overpay law uses it, and it needs every fee above 0
        self.plan_premium = np.zeros(len(self.plan_fee))
        if w.churn_overpay:
            if self.plan_fee.min() <= 0:
                raise ValueError("simulate.world.churn_overpay needs every plan's fee above 0")
            self.plan_premium = np.log(self.plan_fee / self.plan_fee.min())
        self.channel_logit = np.array([c.churn_logit for c in w.channels] + [0.0])
        # two-state problem chains: stationary share and the decay of the initial state
        self.issue = {
            "billing": (w.billing_issue_start, w.billing_issue_stay),
            "delivery": (w.delivery_issue_start, w.delivery_issue_stay),
        }

    def churn_probability(self, z, billing, delivery, tenure, plan, channel, referred, referrer):
        """`referrer`: had referred someone before the period being renewed began."""
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
        return w.churn_noise_floor + (1.0 - w.churn_noise_floor) * _sigmoid(logit)

    def next_plan(self, plan, z, u_change, u_up):
        """Plan at a renewal: most keep theirs; engaged customers upgrade, others downgrade."""
        change = u_change < self.w.plan_change_rate
        up = u_up < _sigmoid(self.w.plan_upgrade_slope * z)
        step = np.where(change, np.where(up, 1, -1), 0)
        return np.clip(plan + step, 0, len(self.plan_len) - 1)

    def engagement_after(self, z, target, steps, eps):
        """Engagement `steps` days later: it settles towards the customer's own level.

        An Ornstein-Uhlenbeck walk in daily steps, drawn here from its exact n-step law.
        """
        rho = 1.0 - 1.0 / self.w.settle_days
        decay = rho**steps
        sd = self.w.daily_sd * np.sqrt((1.0 - decay**2) / (1.0 - rho**2))
        return target + (z - target) * decay + sd * eps

    def issue_after(self, name, state, steps, u):
        """Problem state `steps` days later, drawn from the exact n-step chain."""
        start, stay = self.issue[name]
        lam = stay - start
        pi = start / (1.0 - lam)
        p_on = pi + (state - pi) * lam ** steps
        return u < p_on


def _signup_days(n: int, start: dt.date, days: int, w, rng) -> tuple[np.ndarray, np.ndarray]:
    """Sign-up day of each customer (sorted) and the expected sign-ups of each day."""
    d = np.arange(days)
    intensity = np.exp(np.log1p(w.growth_per_year) * d / 365.0)
    dates = [start + dt.timedelta(days=int(i)) for i in d]
    weekday = np.array([x.weekday() for x in dates])
    intensity = intensity * np.where(weekday == FRIDAY, w.weekly_seasonality, 1.0)
    for year in range(start.year - 1, start.year + days // 365 + 2):
        nowruz = jdatetime.date(year - 621, 1, 1).togregorian()
        off = (nowruz - start).days
        lo, hi = max(off, 0), min(off + 13, days)
        if lo < hi:
            intensity[lo:hi] *= 1.0 - w.nowruz_dip
    share = intensity / intensity.sum()
    counts = rng.multinomial(n, share)
    return np.repeat(d, counts), n * share


def _codes(values: np.ndarray, width: int, alphabet: str) -> np.ndarray:
    """Fixed-width codes of non-negative integers in the given alphabet (vectorised)."""
    base = len(alphabet)
    digits = np.empty((len(values), width), dtype=np.int64)
    v = values.astype(np.int64).copy()
    for j in range(width - 1, -1, -1):
        digits[:, j] = v % base
        v //= base
    chars = np.array(list(alphabet))[digits]
    return np.array(["".join(row) for row in chars], dtype=object)


class _EventBuffer:
    """Rows of one table for a few weeks, flushed to the sink in time order."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        self.table, self.columns = table, columns
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.rows = 0

    def add(self, *arrays: np.ndarray) -> None:
        if len(arrays[0]):
            self.parts.append(arrays)

    def take(self) -> list[np.ndarray] | None:
        if not self.parts:
            return None
        cols = [np.concatenate([p[i] for p in self.parts]) for i in range(len(self.columns))]
        self.parts = []
        order = np.lexsort((cols[0], cols[1]))  # by timestamp, then customer
        self.rows += len(order)
        return [c[order] for c in cols]


def simulate(
    *,
    customers: int,
    seed: int,
    start: dt.date,
    days: int,
    string_ids: bool,
    truth_samples: int,
    world,
    labels: LabelGrid,
    sink: Sink,
    progress: Callable[[int, int], None] | None = None,
) -> SimSummary:
    """Simulate the world and stream its export (and truth) into `sink`."""
    w = world
    rules = _Rules(w)
    rng = np.random.Generator(np.random.PCG64(seed))
    truth_rng = np.random.Generator(np.random.PCG64([seed, 1]))
    n = customers
    t0 = np.datetime64(start.isoformat(), "s")

    # Traits, fixed at sign-up. Customers are indexed in sign-up order.
    signup, expected_arrivals = _signup_days(n, start, days, w, rng)
    plan_share = np.array([p.share for p in w.plans])
    plan = rng.choice(len(w.plans), size=n, p=plan_share / plan_share.sum()).astype(np.int64)
    ch_share = np.array([c.share for c in w.channels])
    channel = rng.choice(len(w.channels), size=n, p=ch_share / ch_share.sum()).astype(np.int64)
    referral_channel = len(w.channels)  # the extra channel "referral"
    z = rng.normal(0.0, w.engagement_sd, n)
    settle = z + rng.normal(0.0, w.settle_shift_sd, n)  # where each customer's engagement heads
    size = np.exp(rng.normal(0.0, w.size_log_sd, n))
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

    periods: list[tuple[np.ndarray, ...]] = []  # (customer, start, end, plan, outcome code)
    truth_parts: list[tuple[np.ndarray, ...]] = []
    usage = _EventBuffer("usage", ("customer", "ts", "messages"))
    charges = _EventBuffer("charges", ("customer", "ts", "amount"))
    tickets = _EventBuffer("tickets", ("customer", "ts", "topic", "resolved"))
    nps = _EventBuffer("nps", ("customer", "ts", "score"))
    reactivations = 0
    first_of_day = np.searchsorted(signup, np.arange(days + 1), side="left")

    def ids(idx: np.ndarray) -> pa.Array:
        if string_ids:
            return pa.array(np.char.add("C", np.char.zfill((idx + 1).astype(str), 7)))
        return pa.array(idx + 100_001, type=pa.int64())

    def ts(seconds: np.ndarray) -> pa.Array:
        return pa.array(t0 + seconds.astype("timedelta64[s]"), type=pa.timestamp("s"))

    def flush() -> None:
        if (cols := usage.take()) is not None:
            sink.append("usage", pa.table({"customer_id": ids(cols[0]), "ts": ts(cols[1]),
                                           "messages": pa.array(cols[2], pa.int64())}))
        if (cols := charges.take()) is not None:
            sink.append("charges", pa.table({"customer_id": ids(cols[0]), "ts": ts(cols[1]),
                                             "amount": pa.array(cols[2], pa.int64())}))
        if (cols := tickets.take()) is not None:
            resolved = np.where(cols[3] < days * 86400, cols[3], -1)
            res = pa.array(t0 + resolved.astype("timedelta64[s]"), type=pa.timestamp("s"),
                           mask=resolved < 0)
            sink.append("tickets", pa.table({
                "customer_id": ids(cols[0]), "opened_at": ts(cols[1]),
                "topic": pa.array(np.array(list(TOPIC_BASE + ("billing", "delivery")))[cols[2]]),
                "resolved_at": res}))
        if (cols := nps.take()) is not None:
            sink.append("nps", pa.table({"customer_id": ids(cols[0]), "ts": ts(cols[1]),
                                         "score": pa.array(cols[2], pa.int64())}))

    def start_run(idx: np.ndarray, day: int) -> None:
        status[idx] = ACTIVE
        run_start[idx] = day
        period_start[idx] = day
        period_end[idx] = day + rules.plan_len[plan[idx]]
        next_nps[idx] = day + w.nps_first_day

    def snapshot(day: int, idx: np.ndarray, kind: np.ndarray, kappa: float) -> None:
        known = np.where(first_referral[idx] < day, first_referral[idx], NEVER)
        truth = _truth(rules, truth_rng, truth_samples, day, labels.horizon_days, z[idx],
                       settle[idx], billing[idx], delivery[idx], period_start[idx],
                       period_end[idx], run_start[idx], plan[idx], channel[idx],
                       referrer[idx] >= 0, known, kappa)
        truth_parts.append((idx, np.full(len(idx), day), kind, truth))

    for day in range(days):
        hi = first_of_day[day + 1]  # customers signed up on or before `day`
        st = status[:hi]

        # 1. renewals due today, decided on yesterday's hidden state
        due = np.flatnonzero((st == ACTIVE) & (period_end[:hi] == day))
        if len(due):
            p = rules.churn_probability(z[due], billing[due], delivery[due],
                                        day - run_start[due], plan[due], channel[due],
                                        referrer[due] >= 0,
                                        first_referral[due] < period_start[due])
            churn = rng.random(len(due)) < p
            cancel = rng.random(len(due)) < w.cancel_share
            outcome = np.where(churn, np.where(cancel, 1, 2), 0)  # renewed, cancelled, lapsed
            periods.append((due, period_start[due], period_end[due], plan[due], outcome))
            gone, kept = due[churn], due[~churn]
            status[gone] = CHURNED
            back = rng.random(len(gone)) < w.reactivation_share
            wait = 1 + rng.exponential(w.reactivation_mean_days, len(gone)).astype(np.int64)
            react_day[gone] = np.where(back, day + wait, -1)
            status[gone[~back]] = GONE
            plan[kept] = rules.next_plan(plan[kept], z[kept], rng.random(len(kept)),
                                         rng.random(len(kept)))
            period_start[kept] = day
            period_end[kept] = day + rules.plan_len[plan[kept]]

        # 2. win-backs: a churned customer starts a new run (a new observation history)
        back = np.flatnonzero((st == CHURNED) & (react_day[:hi] == day))
        if len(back):
            reactivations += len(back)
            start_run(back, day)

        # 3. sign-ups; some arrive through an active customer's referral link
        new = np.arange(first_of_day[day], hi)
        pool = np.flatnonzero(status[:hi] == ACTIVE)
        rate = w.referral_per_day * np.exp(w.referral_engagement_slope * z[pool])
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

        # 4. truth for today's observation points (state as of the start of the day)
        act = np.flatnonzero((status[:hi] == ACTIVE) & (run_start[:hi] < day))
        kind = grid_kind(day - run_start[act], every_days=labels.every_days,
                         min_tenure_days=labels.min_tenure_days,
                         early_life_days=labels.early_life_days)
        on_grid = kind != NONE
        if on_grid.any():
            snapshot(day, act[on_grid], kind[on_grid], kappa)

        # 5. the hidden state moves one day
        live = np.flatnonzero(status[:hi] != GONE)
        z[live] = rules.engagement_after(z[live], settle[live], 1, rng.standard_normal(len(live)))
        for name, arr in (("billing", billing), ("delivery", delivery)):
            arr[live] = rules.issue_after(name, arr[live], 1, rng.random(len(live)))

        # 6. what active customers do today
        act = np.flatnonzero(status[:hi] == ACTIVE)
        _day_events(day, act, rules, rng, z, size, billing, delivery, balance, next_nps,
                    t0_weekday=start.weekday(), usage=usage, charges=charges, tickets=tickets,
                    nps=nps)
        if (day + 1) % FLUSH_DAYS == 0:
            flush()
        if progress and ((day + 1) % 30 == 0 or day + 1 == days):
            progress(day + 1, days)
    flush()

    # the export is taken at day `days`: the scoring points, open periods, the customers
    act = np.flatnonzero(status == ACTIVE)
    snapshot(days, act, np.full(len(act), SCORING, dtype=np.int8), kappa)
    periods.append((act, period_start[act], period_end[act], plan[act], np.full(len(act), 3)))
    summary_periods = _write_subscriptions(periods, rules, w, days, t0, ids, sink)
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes people type
    codes = np.char.add("R", _codes(rng.choice(32**6, n, replace=False), 6, alphabet))
    channel_names = np.array([c.name for c in w.channels] + ["referral"], dtype=object)
    sink.append("customers", pa.table({
        "customer_id": ids(np.arange(n)),
        "signup_date": pa.array(t0 + (signup * 86400).astype("timedelta64[s]"),
                                type=pa.timestamp("s")).cast(pa.date32()),
        "channel": pa.array(channel_names[channel]),
        "referral_code": pa.array(codes),
        "referred_by": pa.array(np.where(referrer >= 0, codes[np.maximum(referrer, 0)], None)),
    }))
    truth = _write_truth(truth_parts, t0, ids, sink)
    early = truth["kind"] == EARLY_LIFE
    return SimSummary(
        customers=n, referred=int((referrer >= 0).sum()), periods=summary_periods[0],
        churned_periods=summary_periods[1], reactivations=reactivations,
        rows={"usage": usage.rows, "charges": charges.rows, "tickets": tickets.rows,
              "nps": nps.rows, "subscriptions": summary_periods[0], "customers": n},
        truth_points=len(truth["truth"]), as_of=start + dt.timedelta(days=days),
        mean_truth_early_life=float(truth["truth"][early].mean()) if early.any() else float("nan"),
    )


def _day_events(day, act, rules, rng, z, size, billing, delivery, balance, next_nps, *,
                t0_weekday, usage, charges, tickets, nps) -> None:
    w = rules.w
    base = day * 86400
    friday = (t0_weekday + day) % 7 == FRIDAY
    za = z[act]

    # usage: how regularly (the engagement signal) and how much (the customer's size)
    p_active = _sigmoid(w.active_day_logit + w.active_day_slope * za)
    if friday:
        p_active = p_active * w.weekly_seasonality
    sends = act[rng.random(len(act)) < p_active]
    batches = 1 + rng.poisson(w.batches_per_active_day - 1.0, len(sends))
    who = np.repeat(sends, batches)
    msgs = np.maximum(1, np.round(size[who] * np.exp(
        rng.normal(w.messages_log_mean, w.messages_log_sd, len(who))))).astype(np.int64)
    secs = base + rng.integers(SECONDS_FROM, SECONDS_TO, len(who))
    usage.add(who, secs, msgs)

    # credit: top up when today's sending would overdraw the balance
    cost = np.bincount(np.searchsorted(sends, who), weights=msgs * w.price_per_message,
                       minlength=len(sends)) if len(sends) else np.zeros(0)
    short = balance[sends] < cost
    buyers = sends[short]
    if len(buyers):
        daily = w.price_per_message * np.exp(w.messages_log_mean + w.messages_log_sd**2 / 2) \
            * size[buyers] * w.batches_per_active_day
        amount = daily * w.topup_days_of_use * np.exp(0.3 * z[buyers]) \
            * np.exp(rng.normal(0.0, w.topup_log_sd, len(buyers)))
        amount = np.maximum(amount, 1.5 * cost[short])
        amount = (np.ceil(amount / 10_000) * 10_000).astype(np.int64)
        balance[buyers] += amount
        first = _first_per_group(who, secs, buyers)
        charges.add(buyers, first - rng.integers(60, 3600, len(buyers)), amount)
    balance[sends] -= cost

    # tickets: a background rate that rises as engagement falls, plus open problems
    base_rate = w.ticket_base_per_day * np.exp(w.ticket_engagement_slope * za)
    n_base = rng.poisson(base_rate)
    n_bill = rng.poisson(w.issue_ticket_per_day * billing[act])
    n_deliv = rng.poisson(w.issue_ticket_per_day * delivery[act])
    topic = np.concatenate([
        rng.choice(len(TOPIC_BASE), size=int(n_base.sum()), p=TOPIC_BASE_P),
        np.full(int(n_bill.sum()), len(TOPIC_BASE)),
        np.full(int(n_deliv.sum()), len(TOPIC_BASE) + 1),
    ])
    who_t = np.concatenate([np.repeat(act, n_base), np.repeat(act, n_bill),
                            np.repeat(act, n_deliv)])
    opened = base + rng.integers(SECONDS_FROM, SECONDS_TO, len(who_t))
    resolved = opened + (rng.exponential(w.resolve_days, len(who_t)) * 86400).astype(np.int64)
    tickets.add(who_t, opened, topic, resolved)

    # NPS surveys at fixed tenures; engaged customers promote, problems make detractors
    due = act[next_nps[act] == day]
    if len(due):
        next_nps[due] += w.nps_every_days
        answer = due[rng.random(len(due)) < w.nps_response_rate]
        score = 7.0 + w.nps_engagement_slope * z[answer] \
            - 2.5 * (billing[answer] | delivery[answer]) \
            + rng.normal(0.0, w.nps_sd, len(answer))
        score = np.clip(np.round(score), 0, 10).astype(np.int64)
        nps.add(answer, base + rng.integers(SECONDS_FROM, SECONDS_TO, len(answer)), score)


def _first_per_group(who: np.ndarray, secs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    order = np.lexsort((secs, who))
    w_sorted, s_sorted = who[order], secs[order]
    pos = np.searchsorted(w_sorted, groups, side="left")
    return s_sorted[pos]


def _truth(rules, rng, samples, day, horizon, z0, settle, billing0, delivery0, period_start,
           period_end, run_start, plan, channel, referred, first_referral, kappa) -> np.ndarray:
    """P(a renewal in [day, day + horizon) is refused | hidden state at the start of `day`).

    Re-simulates only what the decisions depend on (engagement, problems, plan, a first
    referral) from renewal to renewal; the decision coin itself is integrated out (survival =
    product of 1 - p). A first referral still to come is drawn at today's referral rate, the
    one approximation here (it matters only for a second renewal inside the horizon).
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
        hazard = rules.w.referral_per_day * kappa * np.exp(
            rules.w.referral_engagement_slope * z0[sl, None])
        first_ref = np.where(first_referral[sl, None] < day, first_referral[sl, None],
                             day + (-np.log(uniform()) / hazard))
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
            p = rules.churn_probability(z, bill, deliv, r - rs, pl, ch, ref, first_ref < ps)
            survive = np.where(due, survive * (1.0 - p), survive)
            pl = np.where(due, rules.next_plan(pl, z, uniform(), uniform()), pl)
            known = np.where(due, r - 1, known)
            ps = np.where(due, r, ps)
            r = np.where(due, r + rules.plan_len[pl], r)
        out[sl] = 1.0 - survive.mean(axis=1)
    return out


OUTCOME_NAMES = np.array(["renewed", "cancelled", "lapsed", "open"], dtype=object)


def _write_subscriptions(periods, rules, w, days, t0, ids, sink) -> tuple[int, int]:
    cols = [np.concatenate([p[i] for p in periods]) for i in range(5)]
    cust, start, end, plan, outcome = cols
    # a lapse the business has not yet written off is still exported as an open period
    outcome = np.where((outcome == 2) & (end + w.business_grace_days > days), 3, outcome)
    order = np.lexsort((start, cust))
    cust, start, end, plan, outcome = (c[order] for c in (cust, start, end, plan, outcome))
    plan_names = np.array([p.name for p in w.plans], dtype=object)

    def date(d: np.ndarray) -> pa.Array:
        return pa.array(t0 + (d * 86400).astype("timedelta64[s]"),
                        type=pa.timestamp("s")).cast(pa.date32())

    sink.append("subscriptions", pa.table({
        "customer_id": ids(cust), "period_start": date(start), "period_end": date(end),
        "plan": pa.array(plan_names[plan]), "fee": pa.array(rules.plan_fee[plan].astype(np.int64)),
        "outcome": pa.array(OUTCOME_NAMES[outcome]),
    }))
    return len(cust), int(np.isin(outcome, (1, 2)).sum())


def _write_truth(parts, t0, ids, sink) -> dict[str, np.ndarray]:
    cust, day, kind, truth = (np.concatenate([p[i] for p in parts]) for i in range(4))
    order = np.lexsort((day, cust))
    cust, day, kind, truth = cust[order], day[order], kind[order], truth[order]
    names = np.array([KIND_NAMES.get(k, "") for k in range(max(KIND_NAMES) + 1)], dtype=object)
    sink.append("truth", pa.table({
        "customer_id": ids(cust),
        "t": pa.array(t0 + (day * 86400).astype("timedelta64[s]"),
                      type=pa.timestamp("s")).cast(pa.date32()),
        "kind": pa.array(names[kind]),
        "truth": pa.array(truth),
    }))
    return {"kind": kind, "truth": truth}
