"""Jalali dates and Persian / Arabic-Indic digits, as SQL that DuckDB evaluates in bulk.

Ingest never converts a value in Python: it registers the macros below in its DuckDB
connection and the conversion runs vectorised inside the scan.

- `DIGITS_FROM` / `DIGITS_TO`: arguments of DuckDB's `translate()` mapping Persian
  (U+06F0..U+06F9) and Arabic-Indic (U+0660..U+0669) digits to ASCII.
- `jalali_macros_sql()`: `jalali_date(y, m, d)` -> Gregorian DATE, NULL when (y, m, d) is not
  a Jalali date (month 13, day 31 of month 7..12, Esfand 30 in a common year...). Built from
  jdatetime's own calendar (the Gregorian date of 1 Farvardin and the length of Esfand for
  every Jalali year from `FIRST_YEAR` to `LAST_YEAR`), so it agrees with jdatetime exactly.
"""

from __future__ import annotations

import datetime as dt

import jdatetime

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0..U+06F9
ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"  # U+0660..U+0669
DIGITS_FROM = PERSIAN_DIGITS + ARABIC_DIGITS
DIGITS_TO = "0123456789" * 2

FIRST_YEAR = 1000  # 1621-03-21
LAST_YEAR = 1999  # 2620-03-21


def _year_tables() -> tuple[list[dt.date], list[int]]:
    starts, esfand = [], []
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        first = jdatetime.date(year, 1, 1)
        starts.append(first.togregorian())
        esfand.append(30 if first.isleap() else 29)
    return starts, esfand


def jalali_macros_sql() -> str:
    """SQL creating the macro `jalali_date(y, m, d)` (integer arguments)."""
    starts, esfand = _year_tables()
    start_list = ", ".join(f"DATE '{d.isoformat()}'" for d in starts)
    esfand_list = ", ".join(str(n) for n in esfand)
    return f"""
CREATE OR REPLACE MACRO jalali_year_start(y) AS ([{start_list}])[y - {FIRST_YEAR - 1}];
CREATE OR REPLACE MACRO jalali_esfand(y) AS ([{esfand_list}])[y - {FIRST_YEAR - 1}];
CREATE OR REPLACE MACRO jalali_date(y, m, d) AS CASE
    WHEN y BETWEEN {FIRST_YEAR} AND {LAST_YEAR} AND m BETWEEN 1 AND 12 AND d >= 1
     AND d <= CASE WHEN m <= 6 THEN 31 WHEN m <= 11 THEN 30 ELSE jalali_esfand(y) END
    THEN jalali_year_start(y)
         + CAST(CASE WHEN m <= 7 THEN (m - 1) * 31 ELSE 186 + (m - 7) * 30 END + d - 1 AS INTEGER)
END;
"""
