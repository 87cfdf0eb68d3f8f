"""A second, independent implementation of the feature table in plain pandas.

It is written from the documented meanings (`features/catalogue.py`, docs/definitions.md),
the way a data team would write it: `read_parquet`, `merge` on customer_id, filter the
window, `groupby().agg()`, then left-join every family back onto the points with the
documented fill values. No DuckDB, no Ibis, no Python loop over rows.

It serves two purposes: `tests/features/test_reference.py` checks that the product
(`features.windows`, run by DuckDB) computes the same table, and `bench/features.py` uses it
as the pandas baseline the product's speed and memory are compared with.

Days: every timestamp becomes its calendar day (interim timestamps are naive, already in the
business time zone); an event on day d is seen by a point at day t only if d < t.

Memory: joining points to events on customer_id makes (points x events) pairs per customer
before the window filter. For one point per run (early life) that is about the size of the
events table; for the whole ongoing grid it is many times larger. The pairs are therefore
built and aggregated in blocks of whole customers holding at most `max_pairs` pairs each
(one block whenever everything fits). 10M pairs per block was the fastest setting on the
ongoing grid at 10M usage rows (20.8 s and 3.1 GiB peak, against 21.6 s / 4.4 GiB at 20M,
26 s / 9.9 GiB at 60M and 24.5 s / 2.5 GiB at 5M), so it is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import CATEGORICAL, FEATURES, TOPICS

POINT_COLUMNS = ["customer_id", "t", "kind", "run", "run_start", "state", "label", "truth"]
PROBLEM_TOPICS = ("billing", "delivery")
DEFAULT_MAX_PAIRS = 10_000_000


def _days(values: pd.Series) -> pd.Series:
    """Calendar day number (days since 1970-01-01) of dates or naive timestamps."""
    days = pd.to_datetime(values).to_numpy().astype("datetime64[D]").astype("int64")
    return pd.Series(days, index=values.index)


def _code(values: pd.Series, vocab: Sequence[str]) -> pd.Series:
    """Position in the vocabulary; anything else (or missing) is -1."""
    codes = {v: i for i, v in enumerate(vocab)}
    return values.map(codes).fillna(-1).astype("int64")


def _ratio(num: pd.Series, den: pd.Series, default: float = 0.0) -> pd.Series:
    num, den = num.astype("float64"), den.astype("float64")
    return (num / den.where(den > 0)).fillna(default)


def _blocks(frame: pd.DataFrame, events: pd.DataFrame, max_pairs: int) -> pd.Series:
    """Block number per customer, so that a block's (frame rows x event rows) <= max_pairs."""
    pairs = (frame["customer_id"].value_counts()
             * events["customer_id"].value_counts()).dropna().sort_index()
    if pairs.sum() <= max_pairs:
        return pd.Series(0, index=pairs.index)
    return (pairs.cumsum() // max_pairs).astype("int64")


def _window_agg(frame: pd.DataFrame, events: pd.DataFrame, keep: Callable,
                agg: Callable, max_pairs: int) -> pd.DataFrame:
    """merge frame x events on customer_id, keep the rows `keep(pairs)` selects, `agg` them.

    Aggregates of different customers are independent, so the merge runs by blocks of
    customers when the pairs would not fit; the results are concatenated.
    """
    block = _blocks(frame, events, max_pairs)
    if len(block) == 0 or block.max() == 0:
        parts = [(frame, events)]
    else:
        fb = frame["customer_id"].map(block)
        eb = events["customer_id"].map(block)
        parts = [(frame[fb == b], events[eb == b]) for b in range(int(block.max()) + 1)]
    out = []
    for f, e in parts:
        pairs = f.merge(e, on="customer_id")
        out.append(agg(pairs[keep(pairs)]))
    return pd.concat(out) if len(out) > 1 else out[0]


# -- usage ------------------------------------------------------------------------------------

def _daily_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Messages and SMS batches per customer and day, with the customer's previous send day."""
    daily = (usage.groupby(["customer_id", "day"], sort=True)
             .agg(msgs=("messages", "sum"), batches=("messages", "size")).reset_index())
    daily["prev_day"] = daily.groupby("customer_id")["day"].shift()
    return daily


def _usage_stats(frame: pd.DataFrame, daily: pd.DataFrame, recent: int,
                 max_pairs: int) -> pd.DataFrame:
    """Usage over each frame row's window [lo, hi) (n = hi - lo days), indexed by `key`."""

    def agg(p: pd.DataFrame) -> pd.DataFrame:
        n = p["hi"] - p["lo"]
        x = p["day"] - p["lo"]  # day of the window, 0..n-1
        half = np.minimum(recent, n // 2)  # L = min(30, window / 2)
        # idle days just before this send, counting from the window start
        since = np.maximum(p["prev_day"].fillna(-1e18), p["lo"] - 1)
        w = pd.DataFrame({
            "key": p["key"], "msgs": p["msgs"], "batches": p["batches"],
            "recent": (x >= n - np.minimum(recent, n)).astype("int64"),
            "last": p["msgs"].where(x >= n - half, 0),
            "first": p["msgs"].where(x < half, 0),
            # sum of (x - mean x) * messages, doubled to stay in integers
            "sxy2": (2 * x - (n - 1)) * p["msgs"],
            "x": x, "gap": p["day"] - since - 1,
        })
        return w.groupby("key").agg(
            msgs=("msgs", "sum"), batches=("batches", "sum"), days=("msgs", "size"),
            recent=("recent", "sum"), last=("last", "sum"), first=("first", "sum"),
            sxy2=("sxy2", "sum"), last_x=("x", "max"), gap=("gap", "max"))

    return _window_agg(frame, daily, lambda p: (p["day"] >= p["lo"]) & (p["day"] < p["hi"]),
                       agg, max_pairs)


def _trend(last: pd.Series, first: pd.Series) -> pd.Series:
    return _ratio(last - first, last + first)


# -- the families -----------------------------------------------------------------------------

def _charge_stats(frame: pd.DataFrame, charges: pd.DataFrame, max_pairs: int) -> pd.DataFrame:
    return _window_agg(
        frame, charges, lambda p: (p["day"] >= p["lo"]) & (p["day"] < p["hi"]),
        lambda p: p.assign(x=p["day"] - p["lo"]).groupby("key").agg(
            topups=("amount", "size"), total=("amount", "sum"), last_x=("x", "max")),
        max_pairs)


def _ticket_stats(frame: pd.DataFrame, tickets: pd.DataFrame, recent: int,
                  max_pairs: int) -> pd.DataFrame:
    """Tickets of the run before t (for the unresolved count), and of the window."""

    def agg(p: pd.DataFrame) -> pd.DataFrame:
        inside = p["day"] >= p["w0"]
        last30 = inside & (p["day"] >= p["td"] - recent)
        cols = {f"tickets_{topic}": inside & (p["topic"] == topic) for topic in TOPICS}
        cols["tickets_30"] = last30
        cols["tickets_problem_30"] = last30 & p["topic"].isin(PROBLEM_TOPICS)
        cols["tickets_unresolved"] = p["resolved_day"].isna() | (p["resolved_day"] >= p["td"])
        cols["tickets_window"] = inside
        w = pd.DataFrame({k: v.astype("int64") for k, v in cols.items()})
        w["key"] = p["key"]
        w["last_x"] = (p["day"] - p["w0"]).where(inside)
        return w.groupby("key").agg(**{k: (k, "sum") for k in cols}, last_x=("last_x", "max"))

    return _window_agg(frame, tickets, lambda p: (p["day"] >= p["sd"]) & (p["day"] < p["td"]),
                       agg, max_pairs)


def _referral_stats(frame: pd.DataFrame, customers: pd.DataFrame,
                    max_pairs: int) -> pd.DataFrame:
    codes = customers.loc[customers["referral_code"].notna(), ["customer_id", "referral_code"]]
    friends = customers.loc[customers["referred_by"].notna(), ["referred_by", "signup_day"]]
    refs = friends.merge(codes, left_on="referred_by", right_on="referral_code")
    refs = refs[["customer_id", "signup_day"]].rename(columns={"signup_day": "day"})
    return _window_agg(
        frame, refs, lambda p: p["day"] < p["td"],
        lambda p: p.assign(inside=(p["day"] >= p["w0"]).astype("int64")).groupby("key").agg(
            referrals_window=("inside", "sum"), referrals_ever=("day", "size")),
        max_pairs)


def _nps_stats(frame: pd.DataFrame, nps: pd.DataFrame, max_pairs: int) -> pd.DataFrame:
    def agg(p: pd.DataFrame) -> pd.DataFrame:
        p = p.sort_values(["key", "ts"])
        return p.groupby("key").agg(nps_last=("score", "last"), nps_answers=("score", "size"))

    return _window_agg(frame, nps, lambda p: p["day"] < p["td"], agg, max_pairs)


def _subscription_stats(frame: pd.DataFrame, subs: pd.DataFrame, horizon: int,
                        max_pairs: int) -> pd.DataFrame:
    def agg(p: pd.DataFrame) -> pd.DataFrame:
        paid = p.assign(in_run=(p["ps"] >= p["sd"]).astype("int64")).groupby("key")["in_run"].sum()
        cur = p.sort_values(["key", "ps"]).groupby("key").tail(1).set_index("key")
        td, ps, pe = cur["td"], cur["ps"], cur["pe"]
        length = np.maximum(pe - ps, 1)
        # renewal dates pe, pe + length, ... inside [t, t + horizon); none if the period ended
        last_day = td + horizon - 1
        renewals = ((last_day - pe) // length + 1).where((pe >= td) & (last_day >= pe), 0)
        return pd.DataFrame({
            "periods_paid": paid, "plan": cur["plan"], "fee": cur["fee"],
            "days_to_renewal": np.maximum(pe - td, 0), "days_past_renewal": np.maximum(td - pe, 0),
            "renewals_in_horizon": renewals,
        })

    # periods that started before t (one starting on day t is unknown at t)
    return _window_agg(frame, subs, lambda p: p["ps"] < p["td"], agg, max_pairs)


# -- the table --------------------------------------------------------------------------------

def _read(interim_dir: Path, name: str, columns: list[str]) -> pd.DataFrame | None:
    path = Path(interim_dir) / f"{name}.parquet"
    return pd.read_parquet(path, columns=columns) if path.exists() else None


def reference_features(interim_dir: Path, observations: Path, *, window_days: int,
                       recent_days: int, horizon_days: int, plans: Sequence[str],
                       channels: Sequence[str], max_pairs: int = DEFAULT_MAX_PAIRS
                       ) -> pd.DataFrame:
    """The feature table of every point in `observations`: its point columns, then every
    catalogue feature in order, sorted by (customer_id, t)."""
    W, R = window_days, recent_days
    points = pd.read_parquet(observations, columns=POINT_COLUMNS).reset_index(drop=True)

    # one row per point: the days its windows are measured in
    frame = pd.DataFrame({"key": np.arange(len(points)), "customer_id": points["customer_id"],
                          "td": _days(points["t"]), "sd": _days(points["run_start"]),
                          "run": points["run"]})
    frame["w0"] = np.maximum(frame["td"] - W, frame["sd"])  # trailing window [w0, t)
    frame["n"] = frame["td"] - frame["w0"]
    window = frame.assign(lo=frame["w0"], hi=frame["td"])[["key", "customer_id", "lo", "hi"]]
    # the first W days of the run, for points past them (ongoing); the others use the window
    ongoing = frame["td"] > frame["sd"] + W
    runs = frame.loc[ongoing, ["customer_id", "sd"]].drop_duplicates().reset_index(drop=True)
    runs["key"] = np.arange(len(runs))
    runs["lo"], runs["hi"] = runs["sd"], runs["sd"] + W
    run_of_point = frame.loc[ongoing, ["key", "customer_id", "sd"]].merge(
        runs[["customer_id", "sd", "key"]].rename(columns={"key": "run_key"}),
        on=["customer_id", "sd"]).set_index("key")["run_key"]

    customers = pd.read_parquet(Path(interim_dir) / "customers.parquet")
    customers["signup_day"] = _days(customers["signup_date"])

    # events: only the span some point can see, per customer (a cheap pre-filter)
    span = frame.groupby("customer_id").agg(lo=("sd", "min"), hi=("td", "max")).reset_index()

    def relevant(events: pd.DataFrame) -> pd.DataFrame:
        e = events.merge(span, on="customer_id")
        return e.loc[(e["day"] >= e["lo"]) & (e["day"] < e["hi"])].drop(columns=["lo", "hi"])

    usage = _read(interim_dir, "usage", ["customer_id", "ts", "messages"])
    usage["day"] = _days(usage["ts"])
    daily = _daily_usage(relevant(usage[["customer_id", "day", "messages"]]))
    del usage
    u = _usage_stats(window, daily, R, max_pairs)
    fu = _usage_stats(runs[["key", "customer_id", "lo", "hi"]], daily, R, max_pairs)
    del daily

    charges = _read(interim_dir, "charges", ["customer_id", "ts", "amount"])
    charges["day"] = _days(charges["ts"])
    charges = relevant(charges[["customer_id", "day", "amount"]])
    c = _charge_stats(window, charges, max_pairs)
    fc = _charge_stats(runs[["key", "customer_id", "lo", "hi"]], charges, max_pairs)

    tickets = _read(interim_dir, "tickets", ["customer_id", "opened_at", "topic", "resolved_at"])
    tickets["day"] = _days(tickets["opened_at"])
    tickets["resolved_day"] = _days(tickets["resolved_at"]).where(tickets["resolved_at"].notna())
    tickets = relevant(tickets[["customer_id", "day", "topic", "resolved_day"]])
    k = _ticket_stats(frame[["key", "customer_id", "sd", "w0", "td"]], tickets, R, max_pairs)
    fk = _window_agg(runs[["key", "customer_id", "lo", "hi"]], tickets,
                     lambda p: (p["day"] >= p["lo"]) & (p["day"] < p["hi"]),
                     lambda p: p.groupby("key").agg(f_tickets=("day", "size")), max_pairs)

    refs = _referral_stats(frame[["key", "customer_id", "w0", "td"]], customers, max_pairs)

    nps = _read(interim_dir, "nps", ["customer_id", "ts", "score"])
    if nps is not None:
        nps["day"] = _days(nps["ts"])
        s = _nps_stats(frame[["key", "customer_id", "td"]], nps, max_pairs)
    else:
        s = pd.DataFrame({"nps_last": pd.Series(dtype="float64"),
                          "nps_answers": pd.Series(dtype="int64")})

    subs = _read(interim_dir, "subscriptions",
                 ["customer_id", "period_start", "period_end", "plan", "fee"])
    subs = pd.DataFrame({"customer_id": subs["customer_id"], "ps": _days(subs["period_start"]),
                         "pe": _days(subs["period_end"]), "plan": subs["plan"],
                         "fee": subs["fee"]})
    b = _subscription_stats(frame[["key", "customer_id", "sd", "td"]], subs, horizon_days,
                            max_pairs)

    # every family back onto the points (index = key), with the documented fill values
    idx = frame["key"]
    n = frame["n"].set_axis(idx)
    td, sd = frame["td"].set_axis(idx), frame["sd"].set_axis(idx)

    def col(stats: pd.DataFrame, name: str, fill: float | None = 0) -> pd.Series:
        out = stats[name].reindex(idx)
        return out if fill is None else out.fillna(fill)

    msgs, batches, days = col(u, "msgs"), col(u, "batches"), col(u, "days")
    last, first, last_x = col(u, "last"), col(u, "first"), col(u, "last_x", None)
    # least-squares slope of daily messages over x = 0..n-1 (idle days are 0):
    # sum((x - mean) * y) / sum((x - mean)^2), per R days, as a share of the mean per day
    sxx = n * (n * n - 1) / 12.0
    slope = (col(u, "sxy2") / 2.0 / sxx.where(sxx > 0)).fillna(0.0)
    topups, total = col(c, "topups"), col(c, "total")

    feats = pd.DataFrame(index=idx)
    feats["window_days"] = n
    feats["usage_messages"] = msgs
    feats["usage_messages_per_day"] = _ratio(msgs, n)
    feats["usage_active_days"] = days
    feats["usage_active_share"] = _ratio(days, n)
    feats["usage_recent_active_share"] = _ratio(col(u, "recent"), np.minimum(R, n))
    feats["usage_sends_per_active_day"] = _ratio(batches, days)
    feats["usage_trend"] = _trend(last, first)
    feats["usage_slope"] = _ratio(slope * R, msgs / n)
    feats["usage_days_since_last"] = (n - last_x).where(days > 0, n)
    feats["usage_longest_gap"] = np.maximum(col(u, "gap", None), n - 1 - last_x).where(
        days > 0, n)
    feats["charge_topups"] = topups
    feats["charge_total"] = total
    feats["charge_mean"] = _ratio(total, topups)
    feats["charge_days_since_last"] = (n - col(c, "last_x", None)).where(topups > 0, n)
    feats["charge_per_message"] = total / np.maximum(msgs, 1)
    for name in [*(f"tickets_{t}" for t in TOPICS), "tickets_30", "tickets_problem_30",
                 "tickets_unresolved"]:
        feats[name] = col(k, name)
    feats["tickets_days_since_last"] = (n - col(k, "last_x", None)).where(
        col(k, "tickets_window") > 0, n)
    feats["referrals_window"] = col(refs, "referrals_window")
    feats["referrals_ever"] = col(refs, "referrals_ever")
    nps_last = col(s, "nps_last", None).astype("float64")
    feats["nps_last"] = nps_last
    feats["nps_band"] = np.select([nps_last.isna(), nps_last <= 6, nps_last <= 8], [0, 1, 2], 3)
    feats["nps_answers"] = col(s, "nps_answers")
    feats["plan_code"] = _code(col(b, "plan", None), plans)
    feats["fee"] = col(b, "fee")
    feats["days_to_renewal"] = col(b, "days_to_renewal")
    feats["days_past_renewal"] = col(b, "days_past_renewal")
    feats["renewals_in_horizon"] = col(b, "renewals_in_horizon")
    feats["tenure_days"] = td - sd
    signup = frame[["customer_id"]].merge(
        customers[["customer_id", "signup_day", "channel", "referred_by"]],
        on="customer_id", how="left").set_axis(idx)
    feats["customer_age_days"] = td - signup["signup_day"]
    feats["periods_paid"] = col(b, "periods_paid")
    feats["reactivated"] = (frame["run"].set_axis(idx) > 0).astype("int64")
    feats["channel_code"] = _code(signup["channel"], channels)
    feats["was_referred"] = signup["referred_by"].notna().astype("int64")

    # first W days of the run: the block for ongoing points, the window (= all so far) else
    def first_block(stats: pd.DataFrame, name: str) -> pd.Series:
        return stats[name].reindex(run_of_point.to_numpy()).fillna(0).set_axis(
            run_of_point.index).reindex(idx)

    is_on = ongoing.set_axis(idx)
    f_msgs, f_days = first_block(fu, "msgs"), first_block(fu, "days")
    feats["f90_messages_per_day"] = (f_msgs / W).where(is_on, _ratio(msgs, n))
    feats["f90_active_share"] = (f_days / W).where(is_on, _ratio(days, n))
    feats["f90_sends_per_active_day"] = _ratio(first_block(fu, "batches"), f_days).where(
        is_on, _ratio(batches, days))
    feats["f90_trend"] = _trend(first_block(fu, "last"), first_block(fu, "first")).where(
        is_on, _trend(last, first))
    feats["f90_topups"] = first_block(fc, "topups").where(is_on, topups)
    feats["f90_charge_total"] = first_block(fc, "total").where(is_on, total)
    feats["f90_tickets"] = first_block(fk, "f_tickets").where(is_on, col(k, "tickets_window"))

    feats = feats[list(FEATURES)].astype(
        {name: "int64" if name in CATEGORICAL else "float64" for name in FEATURES})
    out = pd.concat([points, feats.reset_index(drop=True)], axis=1)
    return out.sort_values(["customer_id", "t"], kind="stable").reset_index(drop=True)


def vocabulary(interim_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Plan and channel codes: position in the sorted list of values seen in the tables."""
    plans = pd.read_parquet(Path(interim_dir) / "subscriptions.parquet", columns=["plan"])
    channels = pd.read_parquet(Path(interim_dir) / "customers.parquet", columns=["channel"])
    return (tuple(sorted(plans["plan"].dropna().unique())),
            tuple(sorted(channels["channel"].dropna().unique())))
