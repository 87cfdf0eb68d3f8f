"""The input contract: the tables a business exports, their columns, types and rules.

One source of truth for ingest (validation), the simulator (what it writes) and the docs
(`docs/contract.md` is generated from it by `churn contract`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "date", "timestamp", "string", "integer", "number", "enum"]

OUTCOMES = ("renewed", "cancelled", "lapsed", "open")
TOPICS = ("billing", "delivery", "technical", "account", "other")


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    meaning: str = ""
    enum: tuple[str, ...] = ()
    min_value: float | None = None  # inclusive unless min_exclusive
    min_exclusive: bool = False
    max_value: float | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    meaning: str
    optional: bool = False  # the whole file may be absent
    event_ts: str | None = None  # the column events are dated and sorted by
    unique: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMER_ID = Column("customer_id", "id", meaning="the customer's id: string or integer")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            (
                CUSTOMER_ID,
                Column("signup_date", "date", meaning="day the customer signed up"),
                Column("channel", "string", meaning="acquisition channel (free text)"),
                Column(
                    "referral_code", "string", required=False,
                    meaning="the customer's own referral code (unique)",
                ),
                Column(
                    "referred_by", "string", required=False,
                    meaning="referral_code of the customer who referred this one, or empty",
                ),
            ),
            "one row per customer",
            unique=(("customer_id",), ("referral_code",)),
        ),
        Table(
            "subscriptions",
            (
                CUSTOMER_ID,
                Column("period_start", "date", meaning="first day of the billing period"),
                Column("period_end", "date", meaning="renewal day: the period covers [start, end)"),
                Column("plan", "string", meaning="plan name of the period (free text)"),
                Column("fee", "number", min_value=0, meaning="fee paid for the period"),
                Column("outcome", "enum", enum=OUTCOMES, meaning="what happened at period_end"),
            ),
            "one row per billing period",
            unique=(("customer_id", "period_start"),),
        ),
        Table(
            "usage",
            (
                CUSTOMER_ID,
                Column("ts", "timestamp", meaning="when the SMS batch was sent"),
                Column("messages", "integer", min_value=0, meaning="messages in the batch"),
            ),
            "one row per SMS batch sent (the big table)",
            event_ts="ts",
        ),
        Table(
            "charges",
            (
                CUSTOMER_ID,
                Column("ts", "timestamp", meaning="when the credit was topped up"),
                Column(
                    "amount", "number", min_value=0, min_exclusive=True,
                    meaning="top-up amount, > 0",
                ),
            ),
            "one row per credit top-up",
            event_ts="ts",
        ),
        Table(
            "tickets",
            (
                CUSTOMER_ID,
                Column("opened_at", "timestamp", meaning="when the ticket was opened"),
                Column("topic", "enum", enum=TOPICS, meaning="what the ticket is about"),
                Column(
                    "resolved_at", "timestamp", required=False,
                    meaning="when it was resolved; empty while open",
                ),
            ),
            "one row per support ticket",
            event_ts="opened_at",
        ),
        Table(
            "nps",
            (
                CUSTOMER_ID,
                Column("ts", "timestamp", meaning="when the survey was answered"),
                Column(
                    "score", "integer", min_value=0, max_value=10,
                    meaning="0-10 'would you recommend us'",
                ),
            ),
            "one row per NPS survey answer (optional file)",
            optional=True,
            event_ts="ts",
        ),
    )
}

EVENT_TABLES = tuple(name for name, t in TABLES.items() if t.event_ts)

# Rule ids a quarantined row can carry; ingest and the docs share this list.
RULES: dict[str, str] = {
    "missing_value": "a required value is empty",
    "bad_date": "not a valid date (in the export's calendar)",
    "bad_timestamp": "not a valid timestamp (in the export's calendar)",
    "bad_integer": "not a whole number",
    "bad_number": "not a number",
    "bad_enum": "not one of the allowed values",
    "out_of_range": "outside the allowed range",
    "duplicate_key": "a key already seen earlier in the file (the first occurrence is kept)",
    "duplicate_row": "an exact copy of an earlier row (double export; the first is kept)",
    "unknown_customer": "customer_id is not in the customers table",
    "unknown_referrer": "referred_by is not any customer's referral_code",
    "before_signup": "dated before the customer's signup_date",
    "future_row": "dated later than the wall clock when ingest ran",
    "after_as_of": "dated on or after the export's as-of date",
    "period_order": "period_end is not after period_start",
    "period_overlap": "the period overlaps an earlier period of the same customer",
    "resolved_before_opened": "resolved_at is before opened_at",
    "customer_quarantined": "the row's customer was quarantined (see customers)",
    "malformed_row": "the line cannot be split into the header's columns, or is blank",
}
