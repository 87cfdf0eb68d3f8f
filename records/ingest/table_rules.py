"""The rules of scopes "export" and "table" in `records.contract.RULES`: they need other
rows, other tables or the as-of date, so they run after every file is read: customers first
(they judge every other table), then the tables linked to them. Each adds rows to
q_<table>; rows already quarantined are never judged again (`Session.cand`).
"""

from __future__ import annotations

import datetime as dt

from records.contract import EVENT_TABLES, TABLES
from records.ingest.errors import ContractError
from records.ingest.row_rules import OLDEST, start_quarantine
from records.ingest.session import Session
from records.ingest.sql import lit

# the rule ids this module emits (tests check them against records.contract.RULES)
EMITS = ("after_as_of", "unknown_customer", "customer_quarantined", "before_signup",
         "duplicate_row", "duplicate_key", "period_overlap", "unknown_referrer")


def id_expr(run: Session) -> str:
    """customers.customer_id as the other tables' ids are typed (BIGINT in integer mode)."""
    return "CAST(v_customer_id AS BIGINT)" if run.id_type == "integer" else "v_customer_id"


def export_days(run: Session) -> tuple[dt.date | None, dt.date | None]:
    """(first day, latest event day) of the rows that passed the row rules: the first day is
    the earliest signup, period start or event; the latest, the latest event (None: none)."""
    firsts, lasts = [], []
    for name, t in TABLES.items():
        if run.sources.get(name) is None:
            continue
        col = t.event_ts or ("signup_date" if name == "customers" else "period_start")
        lo, hi = run.q(f"SELECT min(v_{col}), max(v_{col}) FROM s_{name} WHERE code IS NULL")[0]
        if lo is not None:
            firsts.append(_day(lo))
        if hi is not None and t.event_ts:
            lasts.append(_day(hi))
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def _before_oldest(run: Session) -> int:
    """Event rows dated before OLDEST (quarantined as before_1900)."""
    total = 0
    for name, t in TABLES.items():
        if t.event_ts and run.sources.get(name) is not None:
            total += run.q(f"SELECT count(*) FROM s_{name} "
                           f"WHERE v_{t.event_ts} < DATE '{OLDEST.isoformat()}'")[0][0]
    return int(total)


def _day(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def choose_as_of(run: Session) -> tuple[dt.date, str]:
    """The as-of date and where it comes from: `config.as_of` ("flag"), checked against the
    export's days, or the day after the latest event that passed the row rules."""
    first, latest = export_days(run)
    as_of = run.config.as_of
    if as_of is None:
        if latest is None:
            old = _before_oldest(run)
            raise ContractError(
                f"{run.raw_dir}: cannot infer the as-of date: no valid event row in "
                f"{', '.join(EVENT_TABLES)}; give the as-of date explicitly"
                + (f". {old:,} event rows are dated before {OLDEST}: is the export Jalali? "
                   "Then set data.calendar: jalali" if old else "")
            )
        return latest + dt.timedelta(days=1), "latest event + 1 day"
    default = f"the day after the latest event, {latest + dt.timedelta(days=1)}" if latest else ""
    if first is not None and as_of <= first:
        raise ContractError(
            f"{run.raw_dir}: the as-of date {as_of} is not after the export's first day "
            f"{first} (its earliest signup, period start or event): every row would be "
            f"quarantined as after_as_of. Pass the date the export was taken (after {first})"
            + (f", or no as-of date (data.as_of: null) for {default}" if default else "")
        )
    gap_max = run.config.max_as_of_gap_days
    if latest is not None and gap_max is not None and (as_of - latest).days > gap_max:
        raise ContractError(
            f"{run.raw_dir}: the as-of date {as_of} is {(as_of - latest).days} days after the "
            f"export's latest event ({latest}); data.max_as_of_gap_days allows {gap_max}. Pass "
            f"the date the export was taken, or no as-of date (data.as_of: null) for "
            f"{default}; if the business really sent nothing for that long, raise "
            f"data.max_as_of_gap_days in params.yaml (null = no limit)"
        )
    return as_of, "flag"


def judge_customers(run: Session) -> None:
    """after_as_of, duplicate_key and unknown_referrer on customers, then the `cust` lookup
    the other tables are judged by."""
    name = "customers"
    start_quarantine(run, name)
    cand = run.cand(name)
    # after_as_of
    run.insert(
        name,
        f"SELECT rid, 'after_as_of' AS rule, 'signup_date' AS col, concat('signup_date ', "
        f"{run.shown(name, 'signup_date')}, ' is on or after the as-of date {run.as_of}') "
        f"AS reason, NULL AS ref_rid, {run.rv(name)} FROM ({cand}) "
        f"WHERE v_signup_date >= DATE '{run.as_of}'",
    )
    # duplicate_key: customer_id (compared as integers in integer mode), then
    # referral_code among the rows left
    ids = id_expr(run)
    for key, expr in (("customer_id", ids), ("referral_code", "v_referral_code")):
        if not _has_repeats(run, f"SELECT * FROM ({cand}) WHERE v_{key} IS NOT NULL", expr):
            continue
        run.insert(
            name,
            f"SELECT rid, 'duplicate_key' AS rule, {lit(key)} AS col, concat({lit(key + ' ')}, "
            f"{run.shown(name, key)}, ' already on line {{ref}}') AS reason, "
            f"first AS ref_rid, {run.rv(name)} FROM (SELECT *, "
            f"min(rid) OVER (PARTITION BY {expr}) AS first "
            f"FROM ({cand}) WHERE v_{key} IS NOT NULL) WHERE rid <> first",
        )
    # unknown_referrer, transitively: kept referral codes are those reachable from a
    # customer referred by nobody through customers that are kept themselves
    run.insert(
        name,
        f"""
        WITH RECURSIVE cand AS ({cand}),
        ok(code) AS (
            SELECT v_referral_code FROM cand
            WHERE v_referred_by IS NULL AND v_referral_code IS NOT NULL
            UNION
            SELECT c.v_referral_code FROM cand c JOIN ok ON c.v_referred_by = ok.code
            WHERE c.v_referral_code IS NOT NULL
        )
        SELECT rid, 'unknown_referrer' AS rule, 'referred_by' AS col,
            concat('referred_by ', {run.shown(name, 'referred_by')},
                CASE WHEN v_referred_by IN (SELECT v_referral_code FROM s_{name}
                                            WHERE v_referral_code IS NOT NULL)
                THEN ' is the referral_code of a quarantined customer (or of one referred '
                     || 'by a quarantined customer)'
                ELSE ' is not any customer''s referral_code' END) AS reason,
            NULL AS ref_rid, {run.rv(name)}
        FROM cand
        WHERE v_referred_by IS NOT NULL AND v_referred_by NOT IN (SELECT code FROM ok)
        """,
    )
    # the lookup the other tables are judged against: one row per customer_id
    run.con.execute(
        f"""
        CREATE OR REPLACE TABLE cust AS
        SELECT id, bool_or(kept) AS kept, max(CASE WHEN kept THEN signup END) AS signup
        FROM (SELECT {ids} AS id, v_signup_date AS signup,
                     s.code IS NULL AND q.rid IS NULL AS kept
              FROM s_{name} s LEFT JOIN q_{name} q ON s.rowid = q.rid
              WHERE v_customer_id IS NOT NULL)
        GROUP BY id
        """
    )


def judge_linked(run: Session, name: str) -> None:
    """after_as_of ... before_signup on a table linked to customers, and duplicate_key and
    period_overlap on subscriptions (duplicate_row, in event tables, is found while writing:
    see outputs.write_kept and `find_duplicates`)."""
    t = TABLES[name]
    date_col = t.event_ts or "period_start"
    kind = "TIMESTAMP" if t.column(date_col).kind == "timestamp" else "DATE"
    start_quarantine(run, name)
    if _linked_suspects(run, name, date_col, kind):
        _judge_against_customers(run, name, date_col, kind)
    if name not in EVENT_TABLES:
        # duplicate_key (customer_id, period_start): the window runs on narrow rows,
        # the few duplicates are joined back for their values
        if _has_repeats(run, run.cand(name), "v_customer_id, v_period_start"):
            _duplicate_periods(run, name)
        period_overlap(run, name)


def _has_repeats(run: Session, rows: str, key: str) -> bool:
    """Whether two of `rows` share `key`. Why: an aggregate answers this at a fraction of the
    cost of the window that then finds which rows repeat, and a clean export has none."""
    return bool(run.one(
        f"SELECT count(*) FROM (SELECT 1 FROM ({rows}) GROUP BY {key} HAVING count(*) > 1)"
    ))


def _duplicate_periods(run: Session, name: str) -> None:
    """duplicate_key on subscriptions: a second period of a customer starting the same day."""
    run.con.execute(
        f"CREATE OR REPLACE TEMP TABLE k_{name} AS SELECT rid, first FROM ("
        f"SELECT rid, min(rid) OVER (PARTITION BY v_customer_id, v_period_start) AS first "
        f"FROM ({run.cand(name)})) WHERE rid <> first"
    )
    run.insert(
        name,
        f"SELECT k.rid, 'duplicate_key' AS rule, 'customer_id+period_start' AS col, "
        f"concat('customer_id ', {run.shown(name, 'customer_id')}, "
        f"' already has a period starting ', "
        f"CAST(v_period_start AS VARCHAR), ' on line {{ref}}') AS reason, "
        f"k.first AS ref_rid, {run.rv(name, 's')} "
        f"FROM k_{name} k JOIN s_{name} s ON s.rowid = k.rid",
    )


def _linked_suspects(run: Session, name: str, date_col: str, kind: str) -> bool:
    """Whether a row may fail a rule of `_judge_against_customers` (never False if one does).

    Why: that judgement joins every row to `cust`, a hash probe per row; the first and last
    date per customer id, checked against `cust`, say "none" for a clean export at a fraction
    of the cost (a perfect hash table when the ids are integers in a small range).
    """
    run.con.execute("SET perfect_ht_threshold = 20")
    try:
        return bool(run.one(
            f"""
            SELECT count(*) FROM (
                SELECT v_customer_id AS id, min(v_{date_col}) AS lo, max(v_{date_col}) AS hi
                FROM s_{name} WHERE code IS NULL GROUP BY ALL
            ) g LEFT JOIN cust l ON g.id = l.id
            WHERE g.hi >= {kind} '{run.as_of}' OR l.id IS NULL OR NOT l.kept
                OR g.lo < l.signup
            """
        ))
    finally:
        run.con.execute("RESET perfect_ht_threshold")


def _judge_against_customers(run: Session, name: str, date_col: str, kind: str) -> None:
    """after_as_of, unknown_customer, customer_quarantined, before_signup (in this order):
    judged on narrow rows (id, date); the few failing rows are joined back for values."""
    shown_id = run.shown(name, "customer_id")
    shown_date = run.shown(name, date_col)
    run.con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE a_{name} AS
        SELECT * FROM (
            SELECT s.rowid AS rid, l.signup,
                CASE WHEN s.v_{date_col} >= {kind} '{run.as_of}' THEN 1
                     WHEN l.id IS NULL THEN 2
                     WHEN NOT l.kept THEN 3
                     WHEN s.v_{date_col} < l.signup THEN 4
                END AS c
            FROM s_{name} s LEFT JOIN cust l ON s.v_customer_id = l.id
            WHERE s.code IS NULL
        ) WHERE c IS NOT NULL
        """
    )
    if not run.one(f"SELECT count(*) FROM a_{name}"):
        return
    rules = ["after_as_of", "unknown_customer", "customer_quarantined", "before_signup"]
    cols = [date_col, "customer_id", "customer_id", date_col]
    run.insert(
        name,
        f"""
        SELECT a.rid, [{', '.join(lit(r) for r in rules)}][a.c] AS rule,
            [{', '.join(lit(c) for c in cols)}][a.c] AS col,
            CASE a.c
            WHEN 1 THEN concat({lit(date_col + ' ')}, {shown_date},
                ' is on or after the as-of date {run.as_of}')
            WHEN 2 THEN concat('customer_id ', {shown_id}, ' is not in customers')
            WHEN 3 THEN concat('customer_id ', {shown_id}, ' is quarantined in customers')
            ELSE concat({lit(date_col + ' ')}, {shown_date}, ' is before signup_date ',
                CAST(a.signup AS VARCHAR), ' of customer ', {shown_id})
            END AS reason, NULL AS ref_rid, {run.rv(name, 's')}
        FROM a_{name} a JOIN s_{name} s ON s.rowid = a.rid
        """,
    )


def period_overlap(run: Session, name: str) -> None:
    """period_overlap: a greedy walk in (period_start, line) order per customer.

    Only customers where some period starts before the latest end of the periods
    before it are walked (a recursive CTE, one step per period).
    """
    run.con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE p_{name} AS
        WITH c AS (SELECT rid, v_customer_id AS cust, v_period_start AS ps,
                          v_period_end AS pe FROM ({run.cand(name)})),
        flagged AS (
            SELECT cust, ps < max(pe) OVER (PARTITION BY cust ORDER BY ps, rid
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS hit FROM c
        )
        SELECT rid, cust, ps, pe, row_number() OVER (PARTITION BY cust ORDER BY ps, rid) AS k
        FROM c WHERE cust IN (SELECT cust FROM flagged WHERE hit)
        """
    )
    if not run.one(f"SELECT count(*) FROM p_{name}"):
        return
    run.insert(
        name,
        f"""
        WITH RECURSIVE walk(cust, k, rid, kept, m, mrid) AS (
            SELECT cust, k, rid, true, pe, rid FROM p_{name} WHERE k = 1
            UNION ALL
            SELECT p.cust, p.k, p.rid, p.ps >= w.m,
                   CASE WHEN p.ps >= w.m THEN p.pe ELSE w.m END,
                   CASE WHEN p.ps >= w.m THEN p.rid ELSE w.mrid END
            FROM walk w JOIN p_{name} p ON p.cust = w.cust AND p.k = w.k + 1
        )
        SELECT w.rid, 'period_overlap' AS rule, 'period_start' AS col,
            concat('period_start ', {run.shown(name, 'period_start')},
                   ' is before period_end ', CAST(w.m AS VARCHAR),
                   ' of the period on line {{ref}}') AS reason,
            w.mrid AS ref_rid, {run.rv(name, 's')}
        FROM walk w JOIN (SELECT rowid AS srid, * FROM s_{name}) s ON s.srid = w.rid
        WHERE NOT w.kept
        """,
    )


def find_duplicates(run: Session, name: str) -> None:
    """duplicate_row, exactly: a hash pre-filter, then equal rows within a hash."""
    t = TABLES[name]
    typed = ", ".join(f"v_{c.name}" for c in t.columns)
    h = f"hash({typed})"
    run.insert(
        name,
        f"""
        WITH cand AS ({run.cand(name)}),
        hot AS (SELECT h FROM (SELECT {h} AS h FROM cand) GROUP BY h HAVING count(*) > 1)
        SELECT rid, 'duplicate_row' AS rule, '' AS col,
            'exact copy of line {{ref}}' AS reason, first AS ref_rid, {run.rv(name)}
        FROM (SELECT *, min(rid) OVER (PARTITION BY {typed}) AS first
              FROM cand WHERE {h} IN (SELECT h FROM hot))
        WHERE rid <> first
        """,
    )
