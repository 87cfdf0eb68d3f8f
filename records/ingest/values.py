"""Typed values: the SQL that turns a raw text column into its contract type, in layers so
that an export in the canonical form pays for no string work (see `Parse`)."""

from __future__ import annotations

from dataclasses import dataclass

from records import calendar as cal
from records.ingest.sources import Source
from records.ingest.sql import WS, lit

# RE2 patterns, always matched whole (regexp_full_match).
INT_RE = r"[+-]?[0-9]+(\.0*)?"
ID_INT_RE = r"[+-]?[0-9]{1,18}"
NUM_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"[ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
TS_NAIVE_RE = DATE_RE + _TIME
# the fast path: exactly what DuckDB prints for a whole-second TIMESTAMP
TS_CANON_RE = DATE_RE + r" ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
TS_OFFSET_RE = DATE_RE + _TIME + r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
TS_FORMAT = "YYYY-MM-DD HH:MM[:SS[.ffffff]][offset]"


class Sql:
    """SQL expressions for one run (time zone, calendar).

    Every typed column is computed in two steps so that the common case stays cheap:
    `fast(r)` parses the raw text as it is (a strict pattern, no trimming or digit
    translation) and `slow(r)`, evaluated by DuckDB only for the rows where the fast path
    gave NULL, trims, translates digits and accepts every documented form.
    """

    def __init__(self, tz: str, calendar: str):
        self.tz, self.calendar = tz, calendar

    @staticmethod
    def clean(x: str, number: bool = False) -> str:
        """Trimmed text with ASCII digits; cheap for the usual plain-ASCII value."""
        src, dst = cal.DIGITS_FROM, cal.DIGITS_TO
        if number:  # Arabic decimal separator -> '.', Arabic thousands separator dropped
            src, dst = src + "\u066b\u066c", dst + "."
        edge = " OR ".join(
            f"{f}({x}, {ch})" for f in ("prefix", "suffix") for ch in ("' '", "chr(9)")
        )
        return (
            f"NULLIF(CASE WHEN length({x}) = strlen({x}) THEN "
            f"CASE WHEN {edge} THEN trim({x}, {lit(WS)}) ELSE {x} END "
            f"ELSE translate(trim({x}, {lit(WS)}), {lit(src)}, {lit(dst)}) END, '')"
        )

    @staticmethod
    def _jalali(x: str) -> str:
        return (
            f"jalali_date(TRY_CAST(substr({x}, 1, 4) AS INTEGER), "
            f"TRY_CAST(substr({x}, 6, 2) AS INTEGER), TRY_CAST(substr({x}, 9, 2) AS INTEGER))"
        )

    def _greg_text(self, x: str, gregorian: bool) -> str:
        """The text with its date part in the Gregorian calendar."""
        return x if gregorian else f"CAST({self._jalali(x)} AS VARCHAR) || substr({x}, 11)"

    def _ts(self, x: str, gregorian: bool, offsets: bool) -> str:
        g = self._greg_text(x, gregorian)
        sql = (
            f"CASE WHEN regexp_full_match({x}, {lit(TS_NAIVE_RE)}) "
            f"THEN TRY_CAST({g} AS TIMESTAMP)"
        )
        if offsets:
            sql += (
                f" WHEN regexp_full_match({x}, {lit(TS_OFFSET_RE)}) THEN "
                f"CAST(TRY_CAST({g} AS TIMESTAMPTZ) AT TIME ZONE {lit(self.tz)} AS TIMESTAMP)"
            )
        return sql + " END"

    def _date(self, x: str, gregorian: bool, full: bool) -> str:
        day = f"TRY_CAST({x} AS DATE)" if gregorian else self._jalali(x)
        sql = f"CASE WHEN regexp_full_match({x}, {lit(DATE_RE)}) THEN {day}"
        if full:
            sql += f" ELSE CAST({self._ts(x, gregorian, offsets=True)} AS DATE)"
        return sql + " END"

    @staticmethod
    def number_text(x: str) -> str:
        """The text a DOUBLE is stored as when its raw text is dropped: a whole number as an
        integer (`10`, as exports write fees), anything else as DuckDB prints it (`10.5`)."""
        return (
            f"CASE WHEN {x} = trunc({x}) AND abs({x}) < 1e15 "
            f"THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) ELSE CAST({x} AS VARCHAR) END"
        )

    @staticmethod
    def _plain(r: str) -> str:
        """r is non-empty ASCII with no surrounding blanks: its trimmed, translated form is
        itself. An empty text is not (empty = missing: a Parquet string column's '' must read
        as a CSV file's empty field does, NULL)."""
        return (
            f"({r} <> '' AND length({r}) = strlen({r}) AND NOT prefix({r}, ' ') "
            f"AND NOT suffix({r}, ' ') "
            f"AND NOT prefix({r}, chr(9)) AND NOT suffix({r}, chr(9)))"
        )

    def parse(self, kind: str, r: str, native: str | None, id_int: bool) -> Parse:
        """How to type the raw VARCHAR column `r` (see `Parse`)."""
        t, f, c = f"t_{r}", f"f_{r}", f"c_{r}"
        gregorian = self.calendar == "gregorian" or (native or "VARCHAR") != "VARCHAR"
        if kind == "integer" or (kind == "id" and id_int):
            pattern = ID_INT_RE if kind == "id" else INT_RE
            return Parse(
                cast=f"TRY_CAST({r} AS BIGINT)",
                fast=f"CASE WHEN CAST({t} AS VARCHAR) = {r} THEN {t} END",
                slow=f"CASE WHEN regexp_full_match({c}, {lit(pattern)}) "
                f"THEN TRY_CAST({c} AS BIGINT) END",
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "id":
            return Parse(
                fast=f"CASE WHEN {self._plain(r)} THEN {r} END", slow=c,
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "number":
            return Parse(
                cast=f"TRY_CAST({r} AS DOUBLE)",
                # a text DuckDB prints for a BIGINT or a finite DOUBLE matches NUM_RE: only
                # the other texts pay for the regex
                fast=f"CASE WHEN CAST(TRY_CAST({r} AS BIGINT) AS VARCHAR) = {r} THEN {t} "
                f"WHEN CAST({t} AS VARCHAR) = {r} AND isfinite({t}) THEN {t} "
                f"WHEN regexp_full_match({r}, {lit(NUM_RE)}) AND isfinite({t}) THEN {t} END",
                slow=f"CASE WHEN regexp_full_match({c}, {lit(NUM_RE)}) "
                f"AND isfinite(TRY_CAST({c} AS DOUBLE)) THEN TRY_CAST({c} AS DOUBLE) END",
                drop_raw=f"{self.number_text(f)} = {r}",
                number=True,
            )
        if kind in ("timestamp", "date") and gregorian:
            # fast: the raw text is exactly what DuckDB prints for the value (checked by
            # printing it back: cheaper than a regex, and as strict)
            sql_type = "TIMESTAMP" if kind == "timestamp" else "DATE"
            slow = (
                self._ts(c, True, offsets=True) if kind == "timestamp"
                else self._date(c, True, full=True)
            )
            return Parse(
                cast=f"TRY_CAST({r} AS {sql_type})",
                fast=f"CASE WHEN CAST({t} AS VARCHAR) = {r} THEN {t} END",
                slow=slow,
                drop_raw=f"{f} IS NOT NULL",
            )
        if kind == "timestamp":  # Jalali text: the raw text is always kept
            g = self._greg_text(r, False)
            return Parse(
                fast=f"CASE WHEN regexp_full_match({r}, {lit(TS_CANON_RE)}) "
                f"THEN TRY_CAST({g} AS TIMESTAMP) END",
                slow=self._ts(c, False, offsets=True),
                drop_raw="",
            )
        if kind == "date":
            return Parse(
                fast=self._date(r, False, full=False),
                slow=self._date(c, False, full=True),
                drop_raw="",
            )
        trimmed = f"NULLIF(trim({r}, {lit(WS)}), '')"
        if kind == "enum":
            return Parse(
                fast=f"CASE WHEN {r} IN ({{enum}}) THEN {r} END", slow=f"lower({trimmed})",
                drop_raw=f"{f} IS NOT NULL", uses_clean=False,
            )
        if kind == "string":
            return Parse(
                fast=f"CASE WHEN {self._plain(r)} THEN {r} END", slow=trimmed,
                drop_raw=f"{f} IS NOT NULL", uses_clean=False,
            )
        raise ValueError(kind)


@dataclass
class Parse:
    """Typing one raw column r in layers, so that the common case stays cheap.

    cast (optional, `t_r`) -> fast (`f_r`: the raw text as it is, strict) -> only where fast
    is NULL: the cleaned text `c_r` (trimmed, ASCII digits) -> slow (from `c_r`, every
    documented form). `drop_raw`: a condition under which the raw text is exactly the value
    printed back (`value_text`), so it is not stored ("" = always store it).
    """

    fast: str
    slow: str
    drop_raw: str
    cast: str = ""
    number: bool = False
    uses_clean: bool = True


def missing(r: str, v: str) -> str:
    return f"({v} IS NULL AND ({r} IS NULL OR trim({r}, {lit(WS)}) = ''))"


def present_but_null(r: str, v: str) -> str:
    return f"({v} IS NULL AND {r} IS NOT NULL AND trim({r}, {lit(WS)}) <> '')"



def value_text(kind: str, v: str) -> str:
    """SQL for the raw text of a value whose raw text was not stored (see `Parse.drop_raw`)."""
    return Sql.number_text(v) if kind == "number" else f"CAST({v} AS VARCHAR)"


def typed_sql(sql: Sql, src: Source, scan: str, id_type: str) -> str:
    """SELECT r_* (raw text), v_* (typed), _empty, _keep_raw, _parsed: in layers.

    _keep_raw: some raw text is not the value printed back (an empty one is: NULL).
    _parsed: no rule on a missing or unparsable value can hold (row_rules.PARSE_RULES):
    every required value is present and took the fast path, every optional one too or is
    empty; nearly every row of an export, so `row_rules.code_sql` skips those rules there.
    """
    t = src.table
    raws = [f"r_{c.name}" for c in t.columns]
    casts, fasts, cleans, out, keep_raw, parsed = [], [], [], [], [], ["NOT _empty"]
    for c in t.columns:
        r = f"r_{c.name}"
        id_int = c.kind == "id" and t.name != "customers" and id_type == "integer"
        p = sql.parse(c.kind, r, src.native_types.get(c.name), id_int)
        if p.cast:
            casts.append(f"{p.cast} AS t_{r}")
        fasts.append(f"{p.fast.replace('{enum}', ', '.join(lit(v) for v in c.enum))} AS f_{r}")
        if p.uses_clean:
            cleans.append(
                f"CASE WHEN f_{r} IS NULL AND {r} IS NOT NULL THEN "
                f"{sql.clean(r, p.number)} END AS c_{r}"
            )
            missing = f"c_{r} IS NULL"
        else:
            missing = f"{r} IS NULL"
        drop = f" AND NOT coalesce({p.drop_raw}, false)" if p.drop_raw else ""
        keep_raw.append(f"({r} IS NOT NULL{drop})")
        parsed.append(f"f_{r} IS NOT NULL" if c.required else f"({r} IS NULL OR f_{r} IS NOT NULL)")
        out.append(
            f"CASE WHEN f_{r} IS NOT NULL THEN f_{r} WHEN {missing} THEN NULL "
            f"ELSE {p.slow} END AS v_{c.name}"
        )
    keep = raws + ["_empty"]
    layer1 = f"SELECT {', '.join(keep + casts)} FROM ({scan})"
    layer2 = f"SELECT {', '.join(keep + fasts)} FROM ({layer1})"
    layer3 = f"SELECT {', '.join(keep + [f'f_{r}' for r in raws] + cleans)} FROM ({layer2})"
    need, ok = " OR ".join(keep_raw), " AND ".join(parsed)
    return (f"SELECT {', '.join(keep + out)}, ({need}) AS _keep_raw, coalesce({ok}, false) "
            f"AS _parsed FROM ({layer3})")
