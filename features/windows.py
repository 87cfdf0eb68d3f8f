"""Point-in-time window features, written once in Ibis so DuckDB and Spark run the same code.

Every date becomes an integer day number (`epoch_days`) first, so windows are integer
comparisons that mean the same on every engine. An event on day `d` belongs to a point at
day `t` only if `d < t` (a day-level event on day `t` is excluded). Each family is one join of
the points to that family's events and one GROUP BY, then all families are left-joined back
onto the points, with the fill values the catalogue documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from features.catalogue import CATALOGUE, FEATURES, TOPICS


@dataclass(frozen=True)
class Spec:
    """The windows, in days: trailing window, the recent part of it, the label horizon."""

    window_days: int
    recent_days: int
    horizon_days: int


@dataclass(frozen=True)
class Vocab:
    """Category codes: position in the sorted list; anything else is -1."""

    plans: tuple[str, ...]
    channels: tuple[str, ...]


def _day(col: ir.Value) -> ir.IntegerValue:
    return col.date().epoch_days() if col.type().is_timestamp() else col.epoch_days()


def _code(col: ir.StringValue, values: Sequence[str]) -> ir.IntegerValue:
    if not values:
        return ibis.literal(-1, "int64")
    return col.cases(*((v, i) for i, v in enumerate(values)), else_=-1).cast("int64")


def _safe_div(num: ir.NumericValue, den: ir.NumericValue, default: float = 0.0):
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"),
                       ibis.literal(default, "float64"))


def _trend(last: ir.NumericValue, first: ir.NumericValue) -> ir.FloatingValue:
    return _safe_div(last - first, last + first)


def _frame(points: ir.Table, customers: ir.Table, vocab: Vocab, spec: Spec) -> ir.Table:
    """Keys, the integer days every window is measured in, and the customer's static facts."""
    t = _day(points.t)
    start = _day(points.run_start)
    w0 = ibis.greatest(t - spec.window_days, start)
    f = points.select(pid=points.customer_id, pt=points.t, run_no=points.run, td=t, sd=start,
                      w0=w0, obs=t - w0)
    c = customers.select(
        pid=customers.customer_id, signup_day=_day(customers.signup_date),
        channel_code=_code(customers.channel, vocab.channels),
        was_referred=customers.referred_by.notnull().cast("int64"),
    )
    return f.join(c, "pid")


def _usage_days(usage: ir.Table, points: ir.Table) -> ir.Table:
    """Each SMS batch with its day, whether it opens a new active day for its customer, and the
    customer's previous active day (one window pass over the customer's batches in time order).

    Only the days some point can see are read: from the earliest run start to the latest `t`
    of each customer's points (a cheap timestamp range join), so the work follows the points
    asked for, not the size of the event log.
    """
    span = points.group_by(cid=points.customer_id).aggregate(
        lo=points.run_start.min().cast("timestamp"), hi=points.t.max().cast("timestamp"))
    seen = usage.join(span, [usage.customer_id == span.cid, usage.ts >= span.lo,
                             usage.ts < span.hi]).select("customer_id", "ts", "messages")
    seen = seen.mutate(day=_day(seen.ts))
    # ordered by day, not timestamp: a cheaper sort (DuckDB's window operator 2.40 -> 1.86 s of
    # CPU on 14.7M batches, bench/RESULTS.md run E), and within a day the order does not
    # matter (only a day's first batch is `new_day`, and its previous day is the same either way)
    prev = seen.day.lag().over(ibis.window(group_by=seen.customer_id, order_by=seen.day))
    seen = seen.mutate(prev_day=prev)
    return seen.select("customer_id", "day", "messages", "prev_day",
                       new_day=seen.prev_day.isnull() | (seen.prev_day != seen.day))


def _usage_window(frame: ir.Table, days: ir.Table, lo: str, hi: str, prefix: str,
                  recent: int, keys: tuple[str, str] = ("pid", "pt")) -> ir.Table:
    """Usage aggregates over [lo, hi) of each frame row (column names of the frame)."""
    j = frame.join(days, [frame.pid == days.customer_id, days.day >= frame[lo],
                          days.day < frame[hi]])
    n = j[hi] - j[lo]
    x = j.day - j[lo]
    half = ibis.least(recent, n // 2)
    # idle days before a new active day, counted from the window's start at the earliest
    idle = x - ibis.coalesce(ibis.greatest(j.prev_day - j[lo] + 1, 0), 0)
    return j.group_by(list(keys)).aggregate(**{
        f"{prefix}msgs": j.messages.sum(), f"{prefix}batches": j.count(),
        f"{prefix}days": j.count(where=j.new_day),
        f"{prefix}recent": j.count(where=j.new_day & (x >= n - recent)),
        f"{prefix}last": j.messages.sum(where=x >= n - half),
        f"{prefix}first": j.messages.sum(where=x < half), f"{prefix}sxy": (x * j.messages).sum(),
        f"{prefix}maxx": x.max(), f"{prefix}idle": idle.max(where=j.new_day),
    })


EXACT_AMOUNT = "decimal(38, 6)"  # amounts to the millionth, sums up to 10**32


def _charges_window(frame: ir.Table, charges: ir.Table, lo: str, hi: str,
                    prefix: str, keys: tuple[str, str] = ("pid", "pt")) -> ir.Table:
    c = charges.select(cid=charges.customer_id, day=_day(charges.ts), amount=charges.amount)
    j = frame.join(c, [frame.pid == c.cid, c.day >= frame[lo], c.day < frame[hi]])
    return j.group_by(list(keys)).aggregate(**{
        # summed exactly (a DECIMAL's integer arithmetic): a float sum's last bits would
        # depend on how DuckDB's threads split the rows (the same for whole-number amounts)
        f"{prefix}topups": j.count(),
        f"{prefix}total": j.amount.cast(EXACT_AMOUNT).sum().cast("float64"),
        f"{prefix}lastx": (j.day - j[lo]).max(),
    })


def _tickets(frame: ir.Table, tickets: ir.Table, recent: int) -> ir.Table:
    k = tickets.select(cid=tickets.customer_id, day=_day(tickets.opened_at), topic=tickets.topic,
                       resolved=_day(tickets.resolved_at))
    # the whole run before t, for tickets still open at t; the window for the counts
    j = frame.join(k, [frame.pid == k.cid, k.day >= frame.sd, k.day < frame.td])
    inside = j.day >= j.w0
    return j.group_by([j.pid, j.pt]).aggregate(
        **{f"tickets_{topic}": j.count(where=inside & (j.topic == topic)) for topic in TOPICS},
        tickets_30=j.count(where=inside & (j.day >= j.td - recent)),
        tickets_problem_30=j.count(where=inside & (j.day >= j.td - recent)
                                   & j.topic.isin(("billing", "delivery"))),
        tickets_unresolved=j.count(where=j.resolved.isnull() | (j.resolved >= j.td)),
        tickets_lastx=(j.day - j.w0).max(where=inside),
        tickets_window=j.count(where=inside),
    )


def _referrals(frame: ir.Table, customers: ir.Table) -> ir.Table:
    codes = customers.filter(customers.referral_code.notnull()).select(
        referrer=customers.customer_id, code=customers.referral_code)
    friends = customers.filter(customers.referred_by.notnull()).select(
        code=customers.referred_by, day=_day(customers.signup_date))
    refs = friends.join(codes, "code").select("referrer", "day")
    j = frame.join(refs, [frame.pid == refs.referrer, refs.day < frame.td])
    return j.group_by([j.pid, j.pt]).aggregate(
        referrals_window=j.count(where=j.day >= j.w0), referrals_ever=j.count()
    )


def _nps(frame: ir.Table, nps: ir.Table) -> ir.Table:
    s = nps.select(cid=nps.customer_id, ts=nps.ts, day=_day(nps.ts), score=nps.score)
    j = frame.join(s, [frame.pid == s.cid, s.day < frame.td])
    # the latest answer; two answers at the same second: the higher score, so it is stable
    latest = j.ts.epoch_seconds() * 16 + j.score
    return j.group_by([j.pid, j.pt]).aggregate(
        nps_last=j.score.argmax(latest), nps_answers=j.count()
    )


def _subscription(frame: ir.Table, subs: ir.Table, vocab: Vocab, horizon: int) -> ir.Table:
    s = subs.select(cid=subs.customer_id, ps=_day(subs.period_start), pe=_day(subs.period_end),
                    plan=subs.plan, fee=subs.fee)
    # periods that started before t: one starting on day t is a day-t event, unknown at t
    j = frame.join(s, [frame.pid == s.cid, s.ps < frame.td])
    g = j.group_by([j.pid, j.pt]).aggregate(
        ps=j.ps.max(), pe=j.pe.argmax(j.ps), plan=j.plan.argmax(j.ps), fee=j.fee.argmax(j.ps),
        periods_paid=j.count(where=j.ps >= j.sd),
    )
    g = g.join(frame.select("pid", "pt", "td"), ["pid", "pt"])
    length = ibis.greatest(g.pe - g.ps, 1)
    ahead = g.td + horizon - 1 - g.pe  # days from the period end to the horizon's last day
    return g.select(
        "pid", "pt", "periods_paid",
        plan_code=_code(g.plan, vocab.plans), fee=g.fee.cast("float64"),
        days_to_renewal=ibis.greatest(g.pe - g.td, 0).cast("float64"),
        days_past_renewal=ibis.greatest(g.td - g.pe, 0).cast("float64"),
        renewals_in_horizon=ibis.ifelse(
            g.pe < g.td, 0, ibis.ifelse(ahead >= 0, ahead // length + 1, 0)).cast("float64"),
    )


def build(points: ir.Table, tables: dict[str, ir.Table], *, vocab: Vocab, spec: Spec) -> ir.Table:
    """The feature table: the points' own columns, then every catalogue feature in order."""
    frame = _frame(points, tables["customers"], vocab, spec)
    daily = _usage_days(tables["usage"], points)
    usage = _usage_window(frame, daily, "w0", "td", "u_", spec.recent_days)
    charges = _charges_window(frame, tables["charges"], "w0", "td", "c_")
    families = [usage, charges, _tickets(frame, tables["tickets"], spec.recent_days),
                _referrals(frame, tables["customers"]),
                _subscription(frame, tables["subscriptions"], vocab, spec.horizon_days)]
    if "nps" in tables:
        families.append(_nps(frame, tables["nps"]))

    # the first 90 days of each run, for ongoing points (young and early-life points see
    # exactly that block as their trailing window, so they reuse it)
    runs = frame.filter(frame.td > frame.sd + spec.window_days).select("pid", "sd").distinct()
    runs = runs.mutate(f_hi=runs.sd + spec.window_days)
    run_keys = ("pid", "sd")
    run_families = [
        _usage_window(runs, daily, "sd", "f_hi", "f_", spec.recent_days, run_keys),
        _charges_window(runs, tables["charges"], "sd", "f_hi", "fc_", run_keys),
        _ticket_count(runs, tables["tickets"]),
    ]
    wide = frame
    for fam in families:
        wide = _attach(wide, fam, ("pid", "pt"))
    for fam in run_families:
        wide = _attach(wide, fam, run_keys)
    feats = _finish(wide, spec)
    out = points.join(feats, [points.customer_id == feats.pid, points.t == feats.pt])
    return out.select(*points.columns, *FEATURES).order_by([points.customer_id, points.t])


def _attach(left: ir.Table, right: ir.Table, keys: tuple[str, ...]) -> ir.Table:
    """Left join that keeps the left keys once (a left join keeps both sides' keys)."""
    j = left.left_join(right, list(keys))
    return j.select(*[left[c] for c in left.columns],
                    *[right[c] for c in right.columns if c not in keys])


def _ticket_count(runs: ir.Table, tickets: ir.Table) -> ir.Table:
    k = tickets.select(cid=tickets.customer_id, day=_day(tickets.opened_at))
    j = runs.join(k, [runs.pid == k.cid, k.day >= runs.sd, k.day < runs.f_hi])
    return j.group_by([j.pid, j.sd]).aggregate(f_tickets=j.count())


def _finish(w: ir.Table, spec: Spec) -> ir.Table:
    """Fill and derive the catalogue columns from the raw aggregates."""
    z = ibis.literal(0, "int64")
    msgs, batches, days = (w.u_msgs.fill_null(z), w.u_batches.fill_null(z),
                           w.u_days.fill_null(z))
    n = w.obs
    # least-squares slope of daily messages over x = 0..n-1 (idle days are zeros). Exact
    # integers made float64 before dividing: a bare 2.0 is a DECIMAL to Spark, which would
    # divide in decimal and round to 6 digits (DuckDB divides in double either way)
    sx = (n * (n - 1)).cast("float64") / 2
    sxx = ((n - 1) * n * (2 * n - 1)).cast("float64") / 6
    den = n * sxx - sx * sx
    slope = ibis.ifelse(den > 0, (n * w.u_sxy.fill_null(z) - sx * msgs) / den, 0.0)
    rel_slope = _safe_div(slope * spec.recent_days * n, msgs)
    topups, total = w.c_topups.fill_null(z), w.c_total.fill_null(0.0)
    ongoing = w.td > w.sd + spec.window_days
    f_msgs = w.f_msgs.fill_null(z)
    f_days = w.f_days.fill_null(z)
    per_day, active_share = _safe_div(msgs, n), _safe_div(days, n)
    per_active_day = _safe_div(batches, days)
    trend = _trend(w.u_last.fill_null(z), w.u_first.fill_null(z))
    tickets_window = w.tickets_window.fill_null(z)
    cols = dict(
        window_days=n,
        usage_messages=msgs, usage_messages_per_day=per_day,
        usage_active_days=days, usage_active_share=active_share,
        usage_recent_active_share=_safe_div(w.u_recent.fill_null(z),
                                            ibis.least(spec.recent_days, n)),
        usage_sends_per_active_day=per_active_day,
        usage_trend=trend,
        usage_slope=rel_slope,
        usage_days_since_last=ibis.ifelse(days > 0, n - w.u_maxx, n),
        usage_longest_gap=ibis.ifelse(days > 0, ibis.greatest(w.u_idle, n - 1 - w.u_maxx), n),
        charge_topups=topups, charge_total=total, charge_mean=_safe_div(total, topups),
        charge_days_since_last=ibis.ifelse(topups > 0, n - w.c_lastx, n),
        charge_per_message=total / ibis.greatest(msgs, 1),
        **{f"tickets_{t}": w[f"tickets_{t}"].fill_null(z) for t in TOPICS},
        tickets_30=w.tickets_30.fill_null(z),
        tickets_problem_30=w.tickets_problem_30.fill_null(z),
        tickets_unresolved=w.tickets_unresolved.fill_null(z),
        tickets_days_since_last=ibis.ifelse(tickets_window > 0, n - w.tickets_lastx, n),
        referrals_window=w.referrals_window.fill_null(z),
        referrals_ever=w.referrals_ever.fill_null(z),
        nps_last=w.nps_last.cast("float64") if "nps_last" in w.columns
        else ibis.null("float64"),
        nps_answers=w.nps_answers.fill_null(z) if "nps_answers" in w.columns else z,
        plan_code=w.plan_code.fill_null(-1), fee=w.fee.fill_null(0.0),
        days_to_renewal=w.days_to_renewal.fill_null(0.0),
        days_past_renewal=w.days_past_renewal.fill_null(0.0),
        renewals_in_horizon=w.renewals_in_horizon.fill_null(0.0),
        tenure_days=w.td - w.sd, customer_age_days=w.td - w.signup_day,
        periods_paid=w.periods_paid.fill_null(z), reactivated=w.run_no > 0,
        channel_code=w.channel_code, was_referred=w.was_referred,
        f90_messages_per_day=ibis.ifelse(ongoing, f_msgs / spec.window_days, per_day),
        f90_active_share=ibis.ifelse(ongoing, f_days / spec.window_days, active_share),
        f90_sends_per_active_day=ibis.ifelse(ongoing, _safe_div(w.f_batches.fill_null(z), f_days),
                                             per_active_day),
        f90_trend=ibis.ifelse(ongoing, _trend(w.f_last.fill_null(z), w.f_first.fill_null(z)),
                              trend),
        f90_topups=ibis.ifelse(ongoing, w.fc_topups.fill_null(z), topups),
        f90_charge_total=ibis.ifelse(ongoing, w.fc_total.fill_null(0.0), total),
        f90_tickets=ibis.ifelse(ongoing, w.f_tickets.fill_null(z), tickets_window),
    )
    nps_last = cols["nps_last"]
    cols["nps_band"] = ibis.cases((nps_last.isnull(), 0), (nps_last <= 6, 1), (nps_last <= 8, 2),
                                  else_=3)
    return w.select("pid", "pt", **{name: cols[name].cast(dtype)
                                    for name, dtype in feature_dtypes().items()})


def feature_dtypes() -> dict[str, str]:
    return {f.name: "int64" if f.categorical else "float64" for f in CATALOGUE}
