"""What active customers do in a day: send, top up, open tickets, answer NPS surveys.

Engagement drives how regularly they send and how much they buy, complain and recommend;
the customer's size how much they send; open problems bring tickets and spoil NPS.

A usage shock (`usage_shock_day`, `usage_shock_factor`) scales the messages of every send
from its day on, and the top-ups follow the smaller spend; no other law changes. It adds no
random draw, so up to its day the world is the one without it, draw for draw (and bytes for
bytes when it is off). From its day on the top-ups differ in number, so the later draws of
the one stream fall differently: the same laws, another realisation.
"""

from __future__ import annotations

import numpy as np

from common import exact
from simulator.events import TOPIC_BASE, TOPIC_BASE_P, Events
from simulator.rules import Rules, sigmoid

FRIDAY = 4
SECONDS_FROM, SECONDS_TO = 7 * 3600, 23 * 3600  # most sending happens 07:00-23:00


def day_events(day: int, act: np.ndarray, rules: Rules, rng: np.random.Generator, z, size,
               billing, delivery, balance, next_nps, *, t0_weekday: int, events: Events) -> None:
    """Add the day's events of the active customers `act` to `events`; updates balances and
    the next NPS survey day in place."""
    w = rules.w
    shocked = (w.usage_shock_factor != 1.0 and w.usage_shock_day is not None
               and day >= w.usage_shock_day)
    base = day * 86400
    friday = (t0_weekday + day) % 7 == FRIDAY
    za = z[act]

    # usage: how regularly (the engagement signal) and how much (the customer's size)
    p_active = sigmoid(w.active_day_logit + w.active_day_slope * za)
    if friday:
        p_active = p_active * w.weekly_seasonality
    sends = act[rng.random(len(act)) < p_active]
    batches = 1 + rng.poisson(w.batches_per_active_day - 1.0, len(sends))
    who = np.repeat(sends, batches)
    scale = size[who] * w.usage_shock_factor if shocked else size[who]
    msgs = np.maximum(1, np.round(scale * exact.exp(
        rng.normal(w.messages_log_mean, w.messages_log_sd, len(who))))).astype(np.int64)
    secs = base + rng.integers(SECONDS_FROM, SECONDS_TO, len(who))
    events.usage.add(who, secs, msgs)

    # credit: top up when today's sending would overdraw the balance
    cost = np.bincount(np.searchsorted(sends, who), weights=msgs * w.price_per_message,
                       minlength=len(sends)) if len(sends) else np.zeros(0)
    short = balance[sends] < cost
    buyers = sends[short]
    if len(buyers):
        daily = w.price_per_message * exact.exp(w.messages_log_mean + w.messages_log_sd**2 / 2) \
            * size[buyers] * w.batches_per_active_day
        if shocked:
            daily = daily * w.usage_shock_factor
        amount = daily * w.topup_days_of_use * exact.exp(0.3 * z[buyers]) \
            * exact.exp(rng.normal(0.0, w.topup_log_sd, len(buyers)))
        amount = np.maximum(amount, 1.5 * cost[short])
        amount = (np.ceil(amount / 10_000) * 10_000).astype(np.int64)
        balance[buyers] += amount
        first = _first_per_group(who, secs, buyers)
        events.charges.add(buyers, first - rng.integers(60, 3600, len(buyers)), amount)
    balance[sends] -= cost

    # tickets: a background rate that rises as engagement falls, plus open problems
    base_rate = w.ticket_base_per_day * exact.exp(w.ticket_engagement_slope * za)
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
    events.tickets.add(who_t, opened, topic, resolved)

    # NPS surveys at fixed tenures; engaged customers promote, problems make detractors
    due = act[next_nps[act] == day]
    if len(due):
        next_nps[due] += w.nps_every_days
        answer = due[rng.random(len(due)) < w.nps_response_rate]
        score = 7.0 + w.nps_engagement_slope * z[answer] \
            - 2.5 * (billing[answer] | delivery[answer]) \
            + rng.normal(0.0, w.nps_sd, len(answer))
        score = np.clip(np.round(score), 0, 10).astype(np.int64)
        events.nps.add(answer, base + rng.integers(SECONDS_FROM, SECONDS_TO, len(answer)), score)


def _first_per_group(who: np.ndarray, secs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The earliest second of each of `groups` among the (who, secs) events."""
    order = np.lexsort((secs, who))
    w_sorted, s_sorted = who[order], secs[order]
    pos = np.searchsorted(w_sorted, groups, side="left")
    return s_sorted[pos]
