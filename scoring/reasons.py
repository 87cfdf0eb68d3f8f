"""Reason codes: why a customer is at risk, in a retention agent's words, and what to do.

A reason is a feature family (usage, charge, tickets, ...) whose summed LightGBM contribution
raises this customer's log-odds. SHAP contributions are measured against the training mean and
trees interact, so a family is reported only if the counterfactual agrees: setting its features
to the reference medians must lower this customer's calibrated probability ("if this looked
typical, the risk would drop"). A family whose values already are the medians has no
counterfactual to check; it is reported on its contribution alone.

Each reason is phrased from the customer's own values: the family's feature with the largest
positive contribution, or the next one when that value makes no sentence an agent could act on
(`PHRASES`, one template per catalogue feature, each vectorised over the rows it is given).

Contributions (TreeSHAP) cost dozens of plain predictions (about 30 on the product model), so
they are computed once for the rows given; the counterfactual checks are one plain prediction
per family, on the rows where that family raises the risk, and the phrases are built per
feature over all the rows that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from records.contract import TOPICS

FAMILIES = ("usage", "charge", "tickets", "referrals", "nps", "subscription")
STATES = ("renewal_due", "pending", "young", "ongoing")
RAISES = "raises"

# What the agent does. Read in this order: a renewal due or pending decides (whatever the
# reasons); then a customer with no reason gets "no action"; then a young customer gets
# onboarding help (any reason); else the top reason's family decides.
ACTIONS: dict[str, str] = {
    "renewal_due": "remind to renew",
    "pending": "remind to renew",
    "": "no action",
    "young": "onboarding help",
    "tickets": "fix the complaint",
    "usage": "proactive contact",
    "charge": "win-back offer",
    "referrals": "proactive contact",
    "nps": "proactive contact",
    "subscription": "proactive contact",
}

# when no feature of a reported family gives a sentence (rare: every positive one is blank)
FALLBACK = {
    "usage": "sending pattern", "charge": "top-up pattern", "tickets": "support history",
    "referrals": "referral history", "nps": "NPS answers", "subscription": "subscription terms",
}

# the model's label days a phrase may need, if its contract does not say (params.yaml values)
DAYS = {"window_days": 90, "recent_days": 30, "early_life_days": 90, "horizon_days": 60}


def columns(top: int = 3) -> list[str]:
    """The columns `reasons` returns, in order."""
    slots = range(1, top + 1)
    return [*(f"reason_{k}" for k in slots), *(f"reason_{k}_family" for k in slots),
            *(f"reason_{k}_direction" for k in slots),
            *(f"reason_{k}_contribution" for k in slots), "suggested_action", "p_if_typical"]


def family_contributions(contrib: pd.DataFrame, families: Mapping[str, str]) -> pd.DataFrame:
    """Per row, the sum of the contributions of each family's features (columns: FAMILIES;
    a family without features sums to 0). Columns of `contrib` not in `families` ("bias") are
    left out. Plain column sums, no matrix product: the same bits on every CPU."""
    unknown = sorted(set(families.values()) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {unknown}; "
                         f"known: {list(FAMILIES)}")
    out = {}
    for family in FAMILIES:
        cols = [c for c in contrib.columns if families.get(c) == family]
        out[family] = (contrib[cols].to_numpy(np.float64).sum(axis=1) if cols
                       else np.zeros(len(contrib)))
    return pd.DataFrame(out, index=contrib.index)


# ---------------------------------------------------------------------------------------------
# phrases


class Values:
    """What a phrase reads: the feature columns at some rows, and the model's label days
    (`days`) and category names (`vocab`)."""

    def __init__(self, cols: Mapping[str, np.ndarray], rows: np.ndarray,
                 days: Mapping[str, int], vocab: Mapping[str, list[str]]) -> None:
        self._cols, self._rows, self.days, self.vocab = cols, rows, days, vocab

    @classmethod
    def of(cls, cols: Mapping[str, object], *, days: Mapping[str, int] | None = None,
           vocab: Mapping[str, list[str]] | None = None) -> Values:
        """All rows of plain columns (for a look at one phrase)."""
        arrays = {k: np.atleast_1d(np.asarray(v)) for k, v in cols.items()}
        n = len(next(iter(arrays.values()))) if arrays else 0
        return cls(arrays, np.arange(n), {**DAYS, **(days or {})}, vocab or {})

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name][self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def where(self, keep: np.ndarray) -> Values:
        """The same columns at the rows where `keep` is true."""
        return Values(self._cols, self._rows[keep], self.days, self.vocab)

    def window(self) -> np.ndarray:
        """Days of the trailing window."""
        return self["window_days"]

    def recent(self) -> np.ndarray:
        """Days of the recent part of the window: 30, fewer if the window is shorter."""
        return np.minimum(self.days["recent_days"], self["window_days"])

    def first(self) -> np.ndarray:
        """Days of the run's first block (f90_*): 90, or the run so far when younger."""
        w = self.days["window_days"]
        return np.where(self["tenure_days"] > w, w, self["window_days"])


def _ints(a) -> list[str]:
    """Whole numbers with thousands separators."""
    return [f"{v:,}" for v in np.rint(np.asarray(a, np.float64)).astype(np.int64).tolist()]


def _num(a) -> list[str]:
    """A rate, as precise as it is read: 1,234 / 12 / 3.4 / 0.25."""
    def one(x: float) -> str:
        if abs(x) >= 10:
            return f"{x:,.0f}"
        s = f"{x:.1f}" if abs(x) >= 1 else f"{x:.2f}"
        return s.removesuffix(".0").removesuffix(".00")
    return [one(x) for x in np.asarray(a, np.float64).tolist()]


def _s(n) -> np.ndarray:
    """The plural ending for counts `n`."""
    return np.where(np.rint(np.asarray(n, np.float64)) == 1, "", "s")


def _fmt(template: str, **cols) -> np.ndarray:
    """`template` filled row by row from equal-length columns."""
    for i, name in enumerate(cols):  # positional fields: twice as fast as a dict per row
        template = template.replace("{" + name + "}", "{" + str(i) + "}")
    lists = [c if isinstance(c, list) else np.asarray(c).tolist() for c in cols.values()]
    fill = template.format
    return np.array([fill(*row) for row in zip(*lists, strict=True)] or [], dtype=object)


def _pick(*pairs) -> np.ndarray:
    """np.select over (condition, text) pairs; the last pair's text is the default."""
    *cases, (_, default) = pairs
    return np.select([c for c, _ in cases], [t for _, t in cases], default).astype(object)


def _blank_if(cond, text) -> np.ndarray:
    return np.where(cond, "", text).astype(object)


def _change(trend, span: str) -> np.ndarray:
    """Messages in the last vs the first part of a span, from its trend t = (last - first) /
    (last + first): last / first = (1 + t) / (1 - t)."""
    t = np.asarray(trend, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.rint(((1 + t) / (1 - t) - 1) * 100)
    pct = np.where(np.isfinite(pct), pct, 0.0)
    return _pick(
        (t <= -1, "messages stopped (none in the last part" + span + ")"),
        (t >= 1, "messages only recent (none at first" + span + ")"),
        (pct < 0, _fmt("messages down {p} %" + span, p=_ints(-pct))),
        (pct > 0, _fmt("messages up {p} %" + span, p=_ints(pct))),
        (None, "messages flat" + span),
    )


def _usage_trend(v: Values) -> np.ndarray:
    # the trend compares the first and last `half` days of the window (features.windows)
    half = np.minimum(v.days["recent_days"], v.window() // 2)
    out = np.empty(len(v), dtype=object)
    for h in np.unique(half):
        at = half == h
        span = " vs the first month" if h == 30 else f" vs the first {_ints([h])[0]} days"
        out[at] = _change(v["usage_trend"][at], span)
    return _blank_if(v["usage_messages"] == 0, out)  # trend 0 says nothing without messages


def _f90_trend(v: Values) -> np.ndarray:
    first = v.first()
    out = np.empty(len(v), dtype=object)
    for d in np.unique(first):
        at = first == d
        out[at] = _change(v["f90_trend"][at], f" over the first {_ints([d])[0]} days")
    silent = (v["f90_messages_per_day"] == 0)
    return _blank_if(silent, out)


def _usage_slope(v: Values) -> np.ndarray:
    pct = np.rint(v["usage_slope"] * 100)
    r = v.days["recent_days"]
    per = "per month" if r == 30 else f"per {r} days"
    return _blank_if(v["usage_messages"] == 0, _pick(
        (pct < 0, _fmt("daily messages falling {p} % of the average " + per, p=_ints(-pct))),
        (pct > 0, _fmt("daily messages rising {p} % of the average " + per, p=_ints(pct))),
        (None, "daily messages flat"),
    ))


def _active(share: np.ndarray, days: np.ndarray, what: str = "the last") -> np.ndarray:
    return _fmt("active on {a} of " + what + " {d} days", a=_ints(share * days), d=_ints(days))


def _since(v: Values, name: str, none: np.ndarray, what: str, never: str) -> np.ndarray:
    n = v[name]
    return _pick(
        (none, _fmt(never + " in the last {w} days", w=_ints(v.window()))),
        (n < 2, ""),
        (None, _fmt("no " + what + " for {n} days", n=_ints(n))),
    )


def _tickets(v: Values, name: str, what: str, days: np.ndarray) -> np.ndarray:
    n = v[name]
    return _blank_if(n == 0, _fmt("{n} " + what + " ticket{s} in the last {d} days",
                                  n=_ints(n), s=_s(n), d=_ints(days)))


def _nps_words(score: np.ndarray) -> np.ndarray:
    s = np.asarray(score, np.float64)
    band = _pick((s <= 6, "detractor"), (s <= 8, "passive"), (None, "promoter"))
    return _fmt("NPS {b} (gave {g})", b=band, g=_ints(np.nan_to_num(s)))


NEVER_ANSWERED = "never answered the NPS survey"


def _nps_band(v: Values) -> np.ndarray:
    band, last = v["nps_band"], v["nps_last"]
    names = np.array(["", "detractor", "passive", "promoter"], dtype=object)[np.clip(band, 0, 3)]
    plain = _fmt("NPS {b}", b=names)
    return _pick((band <= 0, NEVER_ANSWERED),
                 (np.isnan(last), plain),
                 (None, _nps_words(last)))


def _named(v: Values, name: str, template: str) -> np.ndarray:
    """A categorical feature's value by its name in the model's vocabulary ("" if unknown)."""
    vocab = list(v.vocab.get(name, []))
    code = v[name]
    known = (code >= 0) & (code < len(vocab))
    words = np.array([w.replace("_", " ") for w in vocab] + [""], dtype=object)
    return _blank_if(~known, _fmt(template, x=words[np.where(known, code, len(vocab))]))


def _renewal(v: Values) -> np.ndarray:
    to, past = v["days_to_renewal"], v["days_past_renewal"]
    return _pick(
        (past > 0, _fmt("renewal {n} day{s} overdue", n=_ints(past), s=_s(past))),
        (to <= 0, "renewal due today"),
        (None, _fmt("renewal in {n} day{s}", n=_ints(to), s=_s(to))),
    )


def _tenure(v: Values) -> np.ndarray:
    t, early = v["tenure_days"], v.days["early_life_days"]
    return _pick(
        (t < early, _fmt("still in the first {e} days (day {t})", e=_ints([early] * len(t)),
                         t=_ints(t))),
        (None, _fmt("{t} days into this subscription", t=_ints(t))),
    )


Phrase = Callable[[Values], np.ndarray]

PHRASES: dict[str, Phrase] = {
    # usage
    "usage_messages": lambda v: _pick(
        (v["usage_messages"] == 0, _fmt("no message sent in the last {w} days",
                                        w=_ints(v.window()))),
        (None, _fmt("{n} message{s} in the last {w} days", n=_ints(v["usage_messages"]),
                    s=_s(v["usage_messages"]), w=_ints(v.window())))),
    "usage_messages_per_day": lambda v: _fmt(
        "{x} messages a day over the last {w} days", x=_num(v["usage_messages_per_day"]),
        w=_ints(v.window())),
    "usage_active_days": lambda v: _active(v["usage_active_days"] / v.window(), v.window()),
    "usage_active_share": lambda v: _active(v["usage_active_share"], v.window()),
    "usage_recent_active_share": lambda v: _active(v["usage_recent_active_share"],
                                                   v.recent()),
    "usage_sends_per_active_day": lambda v: _blank_if(
        v["usage_sends_per_active_day"] == 0,
        _fmt("{x} SMS batches per active day", x=_num(v["usage_sends_per_active_day"]))),
    "usage_trend": _usage_trend,
    "usage_slope": _usage_slope,
    "usage_days_since_last": lambda v: _since(v, "usage_days_since_last",
                                              v["usage_active_days"] == 0, "message sent",
                                              "no message sent"),
    "usage_longest_gap": lambda v: _pick(
        (v["usage_active_days"] == 0, _fmt("no message sent in the last {w} days",
                                           w=_ints(v.window()))),
        (None, _fmt("went {n} days without sending", n=_ints(v["usage_longest_gap"])))),
    "f90_messages_per_day": lambda v: _fmt(
        "{x} messages a day in the first {d} days", x=_num(v["f90_messages_per_day"]),
        d=_ints(v.first())),
    "f90_active_share": lambda v: _active(v["f90_active_share"], v.first(), "the first"),
    "f90_sends_per_active_day": lambda v: _blank_if(
        v["f90_sends_per_active_day"] == 0,
        _fmt("{x} SMS batches per active day in the first {d} days",
             x=_num(v["f90_sends_per_active_day"]), d=_ints(v.first()))),
    "f90_trend": _f90_trend,
    # charge (credit top-ups)
    "charge_topups": lambda v: _pick(
        (v["charge_topups"] == 0, _fmt("no top-up in the last {w} days", w=_ints(v.window()))),
        (None, _fmt("{n} top-up{s} in the last {w} days", n=_ints(v["charge_topups"]),
                    s=_s(v["charge_topups"]), w=_ints(v.window())))),
    "charge_total": lambda v: _pick(
        (v["charge_total"] == 0, _fmt("nothing topped up in the last {w} days",
                                      w=_ints(v.window()))),
        (None, _fmt("topped up {a} in the last {w} days", a=_ints(v["charge_total"]),
                    w=_ints(v.window())))),
    "charge_mean": lambda v: _blank_if(
        v["charge_mean"] == 0, _fmt("average top-up of {a}", a=_ints(v["charge_mean"]))),
    "charge_days_since_last": lambda v: _since(v, "charge_days_since_last",
                                               v["charge_topups"] == 0, "top-up",
                                               "no top-up"),
    "charge_per_message": lambda v: _blank_if(
        v["charge_per_message"] == 0,
        _fmt("{a} topped up per message sent", a=_num(v["charge_per_message"]))),
    "f90_topups": lambda v: _pick(
        (v["f90_topups"] == 0, _fmt("no top-up in the first {d} days", d=_ints(v.first()))),
        (None, _fmt("{n} top-up{s} in the first {d} days", n=_ints(v["f90_topups"]),
                    s=_s(v["f90_topups"]), d=_ints(v.first())))),
    "f90_charge_total": lambda v: _pick(
        (v["f90_charge_total"] == 0, _fmt("nothing topped up in the first {d} days",
                                          d=_ints(v.first()))),
        (None, _fmt("topped up {a} in the first {d} days", a=_ints(v["f90_charge_total"]),
                    d=_ints(v.first())))),
    # tickets
    **{f"tickets_{topic}": (lambda v, topic=topic: _tickets(v, f"tickets_{topic}", topic,
                                                             v.window()))
       for topic in TOPICS},
    "tickets_30": lambda v: _blank_if(
        v["tickets_30"] == 0, _fmt("{n} ticket{s} in the last {d} days", n=_ints(v["tickets_30"]),
                                   s=_s(v["tickets_30"]),
                                   d=_ints([v.days["recent_days"]] * len(v)))),
    "tickets_problem_30": lambda v: _tickets(v, "tickets_problem_30", "billing or delivery",
                                             np.full(len(v), v.days["recent_days"])),
    "tickets_unresolved": lambda v: _blank_if(
        v["tickets_unresolved"] == 0,
        _fmt("{n} unresolved ticket{s}", n=_ints(v["tickets_unresolved"]),
             s=_s(v["tickets_unresolved"]))),
    "tickets_days_since_last": lambda v: _pick(
        (sum(v[f"tickets_{t}"] for t in TOPICS) == 0, ""),
        (v["tickets_days_since_last"] < 2, "a ticket yesterday"),
        (None, _fmt("last ticket {n} days ago", n=_ints(v["tickets_days_since_last"])))),
    "f90_tickets": lambda v: _blank_if(
        v["f90_tickets"] == 0, _fmt("{n} ticket{s} in the first {d} days",
                                    n=_ints(v["f90_tickets"]), s=_s(v["f90_tickets"]),
                                    d=_ints(v.first()))),
    # referrals
    "referrals_window": lambda v: _pick(
        (v["referrals_window"] == 0, _fmt("no referral in the last {w} days",
                                          w=_ints(v.window()))),
        (None, _fmt("referred {n} customer{s} in the last {w} days",
                    n=_ints(v["referrals_window"]), s=_s(v["referrals_window"]),
                    w=_ints(v.window())))),
    "referrals_ever": lambda v: _pick(
        (v["referrals_ever"] == 0, "has referred nobody"),
        (None, _fmt("has referred {n} customer{s}", n=_ints(v["referrals_ever"]),
                    s=_s(v["referrals_ever"])))),
    "was_referred": lambda v: _pick((v["was_referred"] > 0, "joined through a referral"),
                                    (None, "joined without a referral")),
    # NPS
    "nps_last": lambda v: _pick((np.isnan(v["nps_last"]), NEVER_ANSWERED),
                                (None, _nps_words(v["nps_last"]))),
    "nps_band": _nps_band,
    "nps_answers": lambda v: _pick(
        (v["nps_answers"] == 0, NEVER_ANSWERED),
        (v["nps_answers"] == 1, "answered the NPS survey once"),
        (None, _fmt("answered the NPS survey {n} times", n=_ints(v["nps_answers"])))),
    # subscription
    "window_days": lambda v: _blank_if(
        v.window() >= v.days["window_days"],
        _fmt("only {n} day{s} of history", n=_ints(v.window()), s=_s(v.window()))),
    "plan_code": lambda v: _named(v, "plan_code", "on the {x} plan"),
    "fee": lambda v: _blank_if(v["fee"] == 0, _fmt("fee of {a} per period", a=_ints(v["fee"]))),
    "days_to_renewal": _renewal,
    "days_past_renewal": lambda v: _blank_if(v["days_past_renewal"] <= 0, _renewal(v)),
    "renewals_in_horizon": lambda v: _pick(
        (v["renewals_in_horizon"] == 0, _fmt("no renewal in the next {h} days",
                                             h=_ints([v.days["horizon_days"]] * len(v)))),
        (None, _fmt("{n} renewal{s} in the next {h} days", n=_ints(v["renewals_in_horizon"]),
                    s=_s(v["renewals_in_horizon"]),
                    h=_ints([v.days["horizon_days"]] * len(v))))),
    "tenure_days": _tenure,
    "customer_age_days": lambda v: _fmt("signed up {n} days ago", n=_ints(v["customer_age_days"])),
    "periods_paid": lambda v: _fmt("{n} billing period{s} paid in this run",
                                   n=_ints(v["periods_paid"]), s=_s(v["periods_paid"])),
    "reactivated": lambda v: _blank_if(v["reactivated"] <= 0, "came back after leaving before"),
    "channel_code": lambda v: _named(v, "channel_code", "came through {x}"),
}

NAN_PHRASED = frozenset({"nps_last"})  # the others say nothing of a missing value


def phrase(name: str, v: Values) -> np.ndarray:
    """PHRASES[name] at the rows of `v`; "" where the feature's value is missing."""
    own = v[name]
    missing = np.isnan(own) if own.dtype.kind == "f" and name not in NAN_PHRASED else None
    if missing is None or not missing.any():
        return np.asarray(PHRASES[name](v), dtype=object)
    out = np.full(len(v), "", dtype=object)
    out[~missing] = PHRASES[name](v.where(~missing))
    return out


# ---------------------------------------------------------------------------------------------
# reasons


def _medians(model, medians: Mapping[str, float], x: pd.DataFrame) -> dict[str, object]:
    """The reference value per feature, in its column's dtype (a categorical's code)."""
    missing = [f for f in model.contract.features if f not in medians]
    if missing:
        raise ValueError(f"no reference median for {missing[:5]} ({len(missing)} features)")
    out = {}
    for f in model.contract.features:
        m, dtype = medians[f], x[f].dtype
        if dtype.kind in "iu":
            if not float(m).is_integer():
                raise ValueError(f"the median of categorical {f!r} must be a code, got {m!r}")
            m = int(m)
        out[f] = dtype.type(m)
    return out


def _states(states, n: int) -> np.ndarray:
    s = np.asarray(states, dtype=object).reshape(-1)
    if len(s) != n:
        raise ValueError(f"{len(s)} states for {n} rows")
    bad = sorted(set(s.tolist()) - set(STATES))
    if bad:
        raise ValueError(f"unknown state(s) {bad[:5]}; known: {list(STATES)}")
    return s


def _proba(model, values: np.ndarray) -> np.ndarray:
    """The calibrated probability from the feature matrix as float64 numbers (what LightGBM
    makes of a frame anyway): one path for the probability and its counterfactuals."""
    return model.calibrator(model.booster.predict(values))


def _texts(family: str, rows: np.ndarray, contrib: np.ndarray, feats: list[int],
           names: tuple[str, ...], cols, days, vocab) -> np.ndarray:
    """The reason text of `family` at `rows`: the phrase of its feature with the largest
    positive contribution, else of the next one, for rows where a phrase comes out blank."""
    c = contrib[np.ix_(rows, feats)]
    order = np.argsort(-c, axis=1, kind="stable")
    text = np.full(len(rows), "", dtype=object)
    at = np.arange(len(rows))
    for rank in range(len(feats)):
        pick = order[:, rank]
        todo = (text == "") & (c[at, pick] > 0)
        if not todo.any():
            break
        for j in np.unique(pick[todo]):
            sel = todo & (pick == j)
            text[sel] = phrase(names[feats[j]], Values(cols, rows[sel], days, vocab))
    text[text == ""] = FALLBACK[family]
    return text


def reasons(model, frame: pd.DataFrame, states, medians: Mapping[str, float], *,
            top: int = 3, p: np.ndarray | None = None) -> pd.DataFrame:
    """Up to `top` reasons per row of `frame` (the rows that need them: contributions are
    dear), with the agent's next step and p_if_typical, the calibrated probability with the
    top reason's features at their medians (NaN without a reason; the probability itself
    when those features already are the medians). Columns: `columns(top)`; index: frame's.
    `p`: the rows' calibrated probabilities, if the caller has them (one predict less)."""
    if not 1 <= top <= len(FAMILIES):
        raise ValueError(f"top must be 1..{len(FAMILIES)}, got {top}")
    contract = model.contract
    x = model.matrix(frame)
    n = len(x)
    state = _states(states, n)
    med = _medians(model, medians, x)
    cols_out = columns(top)
    if n == 0:
        empty = {c: pd.Series([], dtype="float64" if c.endswith(("_contribution", "typical"))
                              else "str") for c in cols_out}
        return pd.DataFrame(empty, index=frame.index)

    names = tuple(contract.features)
    values = x.to_numpy(np.float64)  # the contract is checked (model.matrix)
    # pred_contrib on the float64 matrix LightGBM would make of the frame anyway
    contrib = model.booster.predict(values, pred_contrib=True)[:, : len(names)]
    fam = np.zeros((n, len(FAMILIES)))
    for k, family in enumerate(FAMILIES):  # plain column sums: the same bits on every CPU
        for i, name in enumerate(names):
            if contract.families.get(name) == family:
                fam[:, k] += contrib[:, i]
    p = _proba(model, values) if p is None else np.asarray(p, dtype=np.float64)

    # Every family that raises the risk is a reason. The first reason must also hold as the
    # agent reads it: setting its features to the reference medians lowers the probability.
    # Families are tried in contribution order until one passes; one that fails is dropped.
    # Only reason 1 is checked: one plain predict per row (plus the few that fail), next to
    # pred_contrib's hundred.
    members = {f: [i for i, name in enumerate(names) if contract.families.get(name) == f]
               for f in FAMILIES}
    reported = fam > 0
    first_typical = np.full(n, np.nan)
    by_size = np.argsort(-np.where(reported, fam, -np.inf), axis=1, kind="stable")
    pending = np.flatnonzero(reported.any(axis=1))
    for rank in range(len(FAMILIES)):
        if not len(pending):
            break
        k = by_size[pending, rank]
        pending = pending[reported[pending, k]]
        k = by_size[pending, rank]
        if not len(pending):
            break
        moved = values[pending].copy()
        for j, family in enumerate(FAMILIES):
            rows = k == j
            if rows.any():
                feats = members[family]
                moved[np.ix_(rows, feats)] = [med[names[i]] for i in feats]
        same = ((moved == values[pending]) | (np.isnan(moved) & np.isnan(values[pending]))
                ).all(axis=1)
        typical = p[pending].copy()
        if (~same).any():
            typical[~same] = _proba(model, moved[~same])
        ok = same | (typical < p[pending])
        first_typical[pending[ok]] = typical[ok]
        reported[pending[~ok], k[~ok]] = False
        pending = pending[~ok]

    score = np.where(reported, fam, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")[:, :top]
    at = np.arange(n)
    out: dict[str, object] = {}
    days = {**DAYS, **{k: int(v) for k, v in contract.label.items()}}
    cols = {name: x[name].to_numpy() for name in names}
    first_family = None
    for slot in range(top):
        k = order[:, slot]
        has = reported[at, k]
        family = np.where(has, np.array(FAMILIES, dtype=object)[k], "").astype(object)
        text = np.full(n, "", dtype=object)
        for f in FAMILIES:
            rows = np.flatnonzero(family == f)
            if len(rows):
                text[rows] = _texts(f, rows, contrib, members[f], names, cols, days,
                                    contract.vocab)
        out[f"reason_{slot + 1}"] = text
        out[f"reason_{slot + 1}_family"] = family
        out[f"reason_{slot + 1}_direction"] = np.where(has, RAISES, "").astype(object)
        out[f"reason_{slot + 1}_contribution"] = np.where(has, fam[at, k], np.nan)
        if slot == 0:
            first_family = family
            out["p_if_typical"] = np.where(has, first_typical, np.nan)

    renew = np.isin(state, ("renewal_due", "pending"))
    key = np.where(renew, state,
                   np.where(first_family == "", "",
                            np.where(state == "young", "young", first_family)))
    out["suggested_action"] = np.array([ACTIONS[k] for k in key.tolist()], dtype=object)

    result = pd.DataFrame({c: out[c] for c in cols_out}, index=frame.index)
    text_cols = [c for c in cols_out if not c.endswith(("_contribution", "typical"))]
    return result.astype({c: "str" for c in text_cols})
