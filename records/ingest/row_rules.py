"""The rules of scope "row" in `records.contract.RULES`: judged on the row alone, while the
file is read. `local_rules` lists them per table as SQL conditions in priority order; the
first that holds is the row's `code` in s_<table>; `start_quarantine` turns those rows (and
the CSV reader's malformed lines) into q_<table> with a readable reason.
"""

from __future__ import annotations

import datetime as dt

from records.contract import TABLES, Table
from records.ingest.session import Session
from records.ingest.sql import lit, num
from records.ingest.values import TS_FORMAT, missing, present_but_null

KIND_RULE = {
    "date": "bad_date",
    "timestamp": "bad_timestamp",
    "integer": "bad_integer",
    "number": "bad_number",
}

# the rule ids this module emits (tests check them against records.contract.RULES)
EMITS = ("malformed_row", "missing_value", *KIND_RULE.values(), "bad_enum", "out_of_range",
         "period_order", "resolved_before_opened", "before_1900", "future_row")

# rules about a value being absent or unparsable: they cannot hold on a row where
# values.typed_sql's _parsed is true, so `code_sql` skips them there
PARSE_RULES = ("malformed_row", "missing_value", *KIND_RULE.values())

OLDEST = dt.date(1900, 1, 1)  # before_1900: the oldest date a record may hold
JALALI_HINT = (f" is before {OLDEST.isoformat()}: a Jalali date read as Gregorian? Set "
               "data.calendar: jalali if the export is Jalali")


def future_columns(t: Table) -> list[str]:
    cols = []
    for c in t.columns:
        if c.name in ("signup_date", "period_start", "resolved_at") or c.name == t.event_ts:
            cols.append(c.name)
    return cols

def local_rules(t: Table, now_local: dt.datetime) -> list[tuple[str, str, str]]:
    """(condition, rule, column) of the row-local rules, in priority order (`now_local`: the
    wall clock in the business zone, naive)."""
    rules: list[tuple[str, str, str]] = [("_empty", "malformed_row", "")]
    for c in t.columns:
        if c.required:
            rules.append((missing(f"r_{c.name}", f"v_{c.name}"), "missing_value", c.name))
    for c in t.columns:
        if c.kind in KIND_RULE:
            cond = present_but_null(f"r_{c.name}", f"v_{c.name}")
            rules.append((cond, KIND_RULE[c.kind], c.name))
    for c in t.columns:
        if c.kind == "enum":
            allowed = ", ".join(lit(v) for v in c.enum)
            rules.append((f"v_{c.name} NOT IN ({allowed})", "bad_enum", c.name))
    for c in t.columns:
        conds = []
        if c.min_value is not None:
            op = "<=" if c.min_exclusive else "<"
            conds.append(f"v_{c.name} {op} {num(c.min_value)}")
        if c.max_value is not None:
            conds.append(f"v_{c.name} > {num(c.max_value)}")
        if conds:
            rules.append(("(" + " OR ".join(conds) + ")", "out_of_range", c.name))
    names = t.column_names
    if "period_start" in names and "period_end" in names:
        rules.append(("v_period_end <= v_period_start", "period_order", "period_end"))
    if "opened_at" in names and "resolved_at" in names:
        rules.append(("v_resolved_at < v_opened_at", "resolved_before_opened", "resolved_at"))
    for c in t.columns:
        if c.kind in ("date", "timestamp"):
            rules.append((f"v_{c.name} < DATE '{OLDEST.isoformat()}'", "before_1900", c.name))
    now = f"TIMESTAMP '{now_local.isoformat(sep=' ')}'"
    today = f"DATE '{now_local.date().isoformat()}'"
    for col in future_columns(t):
        bound = now if t.column(col).kind == "timestamp" else today
        rules.append((f"v_{col} > {bound}", "future_row", col))
    return rules


def code_sql(rules: list[tuple[str, str, str]]) -> str:
    """The row's `code`: the 1-based index of the first rule that holds, NULL if none.

    Why two CASEs: a CASE with every rule costs a test per rule per row, and nearly every
    row is `_parsed` (see values.typed_sql), so only the rules on values are tested there;
    a rule's index is the same in both.
    """
    whens = [f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(rules, 1)]
    on_values = [w for w, (_, rule, _) in zip(whens, rules, strict=True)
                 if rule not in PARSE_RULES]
    fast = f"CASE {' '.join(on_values)} END" if on_values else "NULL"
    return (f"CAST(CASE WHEN _parsed THEN {fast} "
            f"ELSE CASE {' '.join(whens)} END END AS UTINYINT)")


def start_quarantine(run: Session, name: str) -> None:
    """q_<table>: the malformed lines and the rows failing a row-local rule."""
    t = TABLES[name]
    raws = ", ".join(f"raw_{c.name} VARCHAR" for c in t.columns)
    run.con.execute(
        f"CREATE OR REPLACE TABLE q_{name} (rid BIGINT, line BIGINT, rule VARCHAR, "
        f"col VARCHAR, reason VARCHAR, ref_rid BIGINT, {raws})"
    )
    rejects = run.rejects.get(name, [])
    if rejects:
        run.con.executemany(
            f"INSERT INTO q_{name} (line, rule, col, reason) "
            f"VALUES (?, 'malformed_row', '', ?)",
            [[line, reason] for line, reason in rejects],
        )
    if not run.one(f"SELECT count(code) FROM s_{name}"):
        return  # no row-local rule held: spare planning the long reason SQL
    rule_list = ", ".join(lit(rule) for rule, _ in run.codes[name])
    col_list = ", ".join(lit(col) for _, col in run.codes[name])
    run.insert(
        name,
        f"SELECT rid, rule, col, {reason_sql(run, t)} AS reason, NULL AS ref_rid, "
        f"{run.rv(name)} FROM (SELECT rowid AS rid, [{rule_list}][code] AS rule, "
        f"[{col_list}][code] AS col, * FROM s_{name} WHERE code IS NOT NULL)",
    )


def reason_sql(run: Session, t: Table) -> str:
    """Readable reason of a row-local rule, from rule, col, the raw and typed values."""
    name = t.name
    whens = ["WHEN rule = 'malformed_row' THEN 'every value is empty (blank line)'"]
    for c in t.columns:
        is_col = f"col = {lit(c.name)}"
        shown = run.shown(name, c.name)
        head = lit(c.name + " ")
        whens.append(
            f"WHEN rule = 'missing_value' AND {is_col} THEN {lit(c.name + ' is empty')}"
        )
        if c.kind in KIND_RULE:
            what = {
                "date": f"a valid date (YYYY-MM-DD, {run.calendar} calendar)",
                "timestamp": f"a valid timestamp ({TS_FORMAT}, {run.calendar} calendar)",
                "integer": "a whole number",
                "number": "a finite number",
            }[c.kind]
            whens.append(
                f"WHEN rule = {lit(KIND_RULE[c.kind])} AND {is_col} THEN "
                f"concat({head}, {shown}, {lit(' is not ' + what)})"
            )
        if c.kind == "enum":
            whens.append(
                f"WHEN rule = 'bad_enum' AND {is_col} THEN concat({head}, {shown}, "
                f"{lit(' is not one of ' + ', '.join(c.enum))})"
            )
        if c.min_value is not None or c.max_value is not None:
            parts = []
            if c.min_value is not None:
                op, sign = ("<=", ">") if c.min_exclusive else ("<", ">=")
                bound = num(c.min_value)
                text = lit(f" is not {sign} {bound}")
                parts.append(f"WHEN v_{c.name} {op} {bound} THEN {text}")
            if c.max_value is not None:
                parts.append(f"ELSE {lit(f' is not <= {num(c.max_value)}')}")
            whens.append(
                f"WHEN rule = 'out_of_range' AND {is_col} THEN concat({head}, {shown}, "
                f"CASE {' '.join(parts)} END)"
            )
    names = t.column_names
    if "period_end" in names:
        whens.append(
            f"WHEN rule = 'period_order' THEN concat('period_end ', "
            f"{run.shown(name, 'period_end')}, ' is not after period_start ', "
            f"{run.shown(name, 'period_start')})"
        )
    if "resolved_at" in names:
        whens.append(
            f"WHEN rule = 'resolved_before_opened' THEN concat('resolved_at ', "
            f"{run.shown(name, 'resolved_at')}, ' is before opened_at ', "
            f"{run.shown(name, 'opened_at')})"
        )
    for c in t.columns:
        if c.kind in ("date", "timestamp"):
            whens.append(
                f"WHEN rule = 'before_1900' AND col = {lit(c.name)} THEN concat("
                f"{lit(c.name + ' ')}, {run.shown(name, c.name)}, "
                f"{lit(JALALI_HINT)})")
    for col in future_columns(t):
        if t.column(col).kind == "timestamp":
            when = f"now ({run.now_local.isoformat(sep=' ', timespec='seconds')} {run.tz})"
        else:
            when = f"today ({run.today.isoformat()}, {run.tz})"
        whens.append(
            f"WHEN rule = 'future_row' AND col = {lit(col)} THEN concat({lit(col + ' ')}, "
            f"{run.shown(name, col)}, {lit(' is later than ' + when)})"
        )
    return f"CASE {' '.join(whens)} END"
