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

Scope = Literal["row", "table", "export"]
SCOPE_TEXT = {
    "row": "the row alone",
    "table": "other rows of the same table",
    "export": "other tables or the whole export",
}


@dataclass(frozen=True)
class Rule:
    """A rule a quarantined row can carry. A row carries exactly one: the failing rule with
    the smallest `priority` (rules sharing a priority are decided by contract column order)."""

    id: str
    priority: int
    scope: Scope  # what ingest has to look at to judge it
    meaning: str


# Every rule, in priority order: ingest, its tests and docs/contract.md read this declaration.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("malformed_row", 0, "row",
             "the line cannot be split into the header's columns (too many / too few fields, "
             "unterminated quote), or every value is empty (a blank line inside the file)"),
        Rule("missing_value", 1, "row", "a required value is empty"),
        Rule("bad_date", 2, "row", "not a valid date (in the export's calendar)"),
        Rule("bad_timestamp", 2, "row", "not a valid timestamp (in the export's calendar)"),
        Rule("bad_integer", 2, "row", "not a whole number"),
        Rule("bad_number", 2, "row", "not a finite number"),
        Rule("bad_enum", 3, "row", "not one of the allowed values (case-insensitive)"),
        Rule("out_of_range", 4, "row", "outside the allowed range (contract min / max)"),
        Rule("period_order", 5, "row", "period_end is not after period_start"),
        Rule("resolved_before_opened", 6, "row", "resolved_at is before opened_at"),
        Rule("before_1900", 7, "row",
             "a date or timestamp before 1900-01-01: no customer record is that old (a Jalali "
             "date read as Gregorian, 1402 for 2023, is the usual cause: data.calendar)"),
        Rule("future_row", 7, "row",
             "dated later than the wall clock when ingest ran (signup_date / period_start "
             "later than today, a timestamp later than now, in the business time zone)"),
        Rule("after_as_of", 8, "export",
             "dated on or after the export's as-of date (event ts >= the as-of day's start; "
             "period_start or signup_date >= the as-of day); the as-of date, when not given, "
             "is the day after the latest event that passed the row rules"),
        Rule("unknown_customer", 9, "export",
             "customer_id is not in the customers table (in integer mode, also an id that "
             "is not an integer)"),
        Rule("customer_quarantined", 10, "export",
             "the row's customer was quarantined (every customers row of that id)"),
        Rule("before_signup", 11, "export",
             "an event ts or period_start before the customer's signup_date"),
        Rule("duplicate_row", 12, "table",
             "(event tables) an exact copy, as typed values, of an earlier row that passed "
             "the rules above (double export; the first is kept)"),
        Rule("duplicate_key", 13, "table",
             "a key (customers: customer_id, then referral_code; subscriptions: customer_id "
             "+ period_start) already held by an earlier row in file order that passed the "
             "rules above (the first is kept)"),
        Rule("period_overlap", 14, "table",
             "(subscriptions) the period starts before the end of an earlier kept period of "
             "the same customer (walked in period_start, line order)"),
        Rule("unknown_referrer", 15, "table",
             "referred_by is not the referral_code of a kept customer (applied last and "
             "transitively: a customer referred by a quarantined customer is quarantined)"),
    )
}
