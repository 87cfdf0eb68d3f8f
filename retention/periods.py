"""Report periods (months, quarters, years) in the Gregorian or the Jalali calendar.

A Persian business reads its year from 1 Farvardin, so with `calendar="jalali"` the periods
are Jalali months, quarters and years, labelled that way ("Farvardin 1404", "Q1 1404", "1404").
Boundaries are Gregorian days (what the tables store); a period is `[start, end)`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import jdatetime
import pandas as pd

Calendar = Literal["gregorian", "jalali"]
Period = Literal["month", "quarter", "year"]

STEP = {"month": 1, "quarter": 3, "year": 12}
JALALI_MONTHS = ("Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar",
                 "Mehr", "Aban", "Azar", "Dey", "Bahman", "Esfand")


def _to_calendar(day: dt.date, calendar: Calendar) -> tuple[int, int]:
    if calendar == "jalali":
        j = jdatetime.date.fromgregorian(date=day)
        return j.year, j.month
    return day.year, day.month


def _first_day(year: int, month: int, calendar: Calendar) -> dt.date:
    if calendar == "jalali":
        return jdatetime.date(year, month, 1).togregorian()
    return dt.date(year, month, 1)


def _label(year: int, month: int, period: Period, calendar: Calendar) -> str:
    if period == "year":
        return str(year)
    if period == "quarter":
        q = (month - 1) // 3 + 1
        return f"Q{q} {year}" if calendar == "jalali" else f"{year}-Q{q}"
    return f"{JALALI_MONTHS[month - 1]} {year}" if calendar == "jalali" else f"{year}-{month:02d}"


def _align(year: int, month: int, period: Period) -> tuple[int, int]:
    step = STEP[period]
    return year, (month - 1) // step * step + 1


def _next(year: int, month: int, period: Period) -> tuple[int, int]:
    index = year * 12 + (month - 1) + STEP[period]
    return index // 12, index % 12 + 1


def period_of(day: dt.date, *, period: Period = "month", calendar: Calendar = "gregorian"
              ) -> tuple[dt.date, dt.date, str]:
    """(start, end, label) of the period holding `day`."""
    y, m = _align(*_to_calendar(day, calendar), period)
    ny, nm = _next(y, m, period)
    return _first_day(y, m, calendar), _first_day(ny, nm, calendar), _label(y, m, period, calendar)


def periods(first_day: dt.date, as_of: dt.date, *, period: Period = "month",
            calendar: Calendar = "gregorian") -> pd.DataFrame:
    """Every period from the one holding `first_day` to the one holding the day before `as_of`
    (the export holds nothing on or after `as_of`). Columns: label, start, end (datetime64[s],
    end exclusive), partial (True where end > as_of: the period was not over when the export
    was taken, so its figures must not be read with complete ones)."""
    first_day, as_of = pd.Timestamp(first_day).date(), pd.Timestamp(as_of).date()
    last = as_of - dt.timedelta(days=1)
    rows = []
    y, m = _align(*_to_calendar(first_day, calendar), period)
    while True:
        start = _first_day(y, m, calendar)
        if start > last:
            break
        ny, nm = _next(y, m, period)
        end = _first_day(ny, nm, calendar)
        rows.append((_label(y, m, period, calendar), start, end, end > as_of))
        y, m = ny, nm
    out = pd.DataFrame(rows, columns=["label", "start", "end", "partial"])
    return out.astype({"start": "datetime64[s]", "end": "datetime64[s]", "partial": bool})
