"""The ingest settings: the `data` section of params.yaml (the params loader builds it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.errors import check
from records.contract import TABLES

CALENDARS = ("gregorian", "jalali")


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class IngestConfig:
    timezone: str  # offsets are converted to it; naive timestamps are taken as in it
    calendar: Literal["gregorian", "jalali"]  # the calendar of the export's text dates
    as_of: dt.date | None  # the export date; None = the day after the latest valid event
    max_bad_share: float  # more bad rows than this share in one table = a broken export
    rename: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> {yours: ours}
    allow_empty: tuple[str, ...] = ()  # required tables that may have no rows
    max_as_of_gap_days: int | None = 365  # as_of at most this many days after the latest event

    def __post_init__(self) -> None:
        tables = ", ".join(TABLES)
        check(_known_zone(self.timezone), "timezone",
              f"unknown time zone {self.timezone!r}; use an IANA name such as 'Asia/Tehran'")
        check(self.calendar in CALENDARS, "calendar",
              f"must be one of {', '.join(CALENDARS)}, not {self.calendar!r}")
        check(self.as_of is None or isinstance(self.as_of, dt.date), "as_of",
              f"must be a date (YYYY-MM-DD) or null, not {self.as_of!r}")
        check(0.0 <= self.max_bad_share <= 1.0, "max_bad_share",
              f"must be a share between 0 and 1 (0.05 = 5 %), not {self.max_bad_share}")
        unknown = sorted(set(self.rename) - set(TABLES))
        check(not unknown, "rename",
              f"unknown table(s) {', '.join(unknown)}; the tables are {tables}")
        for table, mapping in self.rename.items():
            check(isinstance(mapping, dict), f"rename.{table}",
                  "must map your column names to contract column names, e.g. {sent_at: ts}")
        unknown = sorted(set(self.allow_empty) - set(TABLES))
        check(not unknown, "allow_empty",
              f"unknown table(s) {', '.join(unknown)}; the tables are {tables}")
        gap = self.max_as_of_gap_days
        check(gap is None or gap >= 0, "max_as_of_gap_days",
              f"must be 0 or more days, or null for no limit, not {gap}")
