"""The tables the business exports (records/contract.py) and the truth table, as Arrow.

The engine works in customer indexes and day or second offsets from the start; this is the
one place they become customer ids, timestamps, dates and names. Event tables are buffered
for a few weeks and flushed in time order, so memory grows with customers, not with events.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa

from common import exact
from features.observations import KIND_NAMES
from simulator.events import TOPICS, Events
from simulator.rules import Rules

OUTCOME_NAMES = np.array(["renewed", "cancelled", "lapsed", "open"], dtype=object)
RENEWED, CANCELLED, LAPSED, OPEN = 0, 1, 2, 3
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes people type


class Sink(Protocol):
    def append(self, table: str, batch: pa.Table) -> None: ...


def referral_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """One distinct code per customer, "R" and six characters people can type."""
    return np.char.add("R", _codes(rng.choice(32**6, n, replace=False), 6, CODE_ALPHABET))


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


class Export:
    """Writes the engine's arrays to `sink` as the contract's tables (and the truth)."""

    def __init__(self, sink: Sink, t0: np.datetime64, days: int, string_ids: bool) -> None:
        self.sink, self.t0, self.days, self.string_ids = sink, t0, days, string_ids

    def id_values(self, idx: np.ndarray) -> np.ndarray:
        """The customer ids of `idx` as exported (int64, or strings when `string_ids`)."""
        if self.string_ids:
            return np.char.add("C", np.char.zfill((idx + 1).astype(str), 7))
        return (idx + 100_001).astype(np.int64)

    def ids(self, idx: np.ndarray) -> pa.Array:
        if self.string_ids:
            return pa.array(self.id_values(idx))
        return pa.array(self.id_values(idx), type=pa.int64())

    def ts(self, seconds: np.ndarray) -> pa.Array:
        return pa.array(self.t0 + seconds.astype("timedelta64[s]"), type=pa.timestamp("s"))

    def date(self, days: np.ndarray) -> pa.Array:
        return pa.array(self.t0 + (days * 86400).astype("timedelta64[s]"),
                        type=pa.timestamp("s")).cast(pa.date32())

    def flush(self, events: Events) -> None:
        """Append the buffered events of each table, in time order."""
        if (cols := events.usage.take()) is not None:
            self.sink.append("usage", pa.table({
                "customer_id": self.ids(cols[0]), "ts": self.ts(cols[1]),
                "messages": pa.array(cols[2], pa.int64())}))
        if (cols := events.charges.take()) is not None:
            self.sink.append("charges", pa.table({
                "customer_id": self.ids(cols[0]), "ts": self.ts(cols[1]),
                "amount": pa.array(cols[2], pa.int64())}))
        if (cols := events.tickets.take()) is not None:
            # a ticket resolved after the export date is still open in it
            resolved = np.where(cols[3] < self.days * 86400, cols[3], -1)
            res = pa.array(self.t0 + resolved.astype("timedelta64[s]"), type=pa.timestamp("s"),
                           mask=resolved < 0)
            self.sink.append("tickets", pa.table({
                "customer_id": self.ids(cols[0]), "opened_at": self.ts(cols[1]),
                "topic": pa.array(np.array(list(TOPICS))[cols[2]]),
                "resolved_at": res}))
        if (cols := events.nps.take()) is not None:
            self.sink.append("nps", pa.table({
                "customer_id": self.ids(cols[0]), "ts": self.ts(cols[1]),
                "score": pa.array(cols[2], pa.int64())}))

    def subscriptions(self, periods: list[tuple[np.ndarray, ...]], rules: Rules,
                      still_open: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, int]:
        """Append the periods (customer, start, end, plan, outcome code); returns how many
        periods and how many of them churned (cancelled or lapsed). `still_open` (customers,
        period ends): renewed periods whose next period has not started by the export date (a
        late payer), exported as open."""
        cust, start, end, plan, outcome = (np.concatenate([p[i] for p in periods])
                                           for i in range(5))
        # a lapse the business has not yet written off is still exported as an open period
        outcome = np.where((outcome == LAPSED) & (end + rules.w.business_grace_days > self.days),
                           OPEN, outcome)
        if still_open is not None and len(still_open[0]):
            key = (cust.astype(np.int64) << 32) + end
            waiting = (still_open[0].astype(np.int64) << 32) + still_open[1]
            outcome = np.where(np.isin(key, waiting) & (outcome == RENEWED), OPEN, outcome)
        order = np.lexsort((start, cust))
        cust, start, end, plan, outcome = (c[order] for c in (cust, start, end, plan, outcome))
        plan_names = np.array([p.name for p in rules.w.plans], dtype=object)
        self.sink.append("subscriptions", pa.table({
            "customer_id": self.ids(cust), "period_start": self.date(start),
            "period_end": self.date(end), "plan": pa.array(plan_names[plan]),
            "fee": pa.array(rules.plan_fee[plan].astype(np.int64)),
            "outcome": pa.array(OUTCOME_NAMES[outcome]),
        }))
        return len(cust), int(np.isin(outcome, (CANCELLED, LAPSED)).sum())

    def customers(self, signup: np.ndarray, channel: np.ndarray, channel_names: np.ndarray,
                  referrer: np.ndarray, codes: np.ndarray) -> None:
        """Append one row per customer; `referrer` is -1 for a customer nobody referred."""
        self.sink.append("customers", pa.table({
            "customer_id": self.ids(np.arange(len(signup))),
            "signup_date": self.date(signup),
            "channel": pa.array(channel_names[channel]),
            "referral_code": pa.array(codes),
            "referred_by": pa.array(np.where(referrer >= 0, codes[np.maximum(referrer, 0)], None)),
        }))

    def truth(self, parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Append the truth points (customer, day, kind code, truth); returns kind and truth."""
        cust, day, kind, truth = (np.concatenate([p[i] for p in parts]) for i in range(4))
        order = np.lexsort((day, cust))
        cust, day, kind, truth = cust[order], day[order], kind[order], truth[order]
        truth = exact.round_sig(truth)  # the same digits on every CPU (exact.py)
        names = np.array([KIND_NAMES.get(k, "") for k in range(max(KIND_NAMES) + 1)], dtype=object)
        self.sink.append("truth", pa.table({
            "customer_id": self.ids(cust), "t": self.date(day),
            "kind": pa.array(names[kind]), "truth": pa.array(truth),
        }))
        return kind, truth
