"""Has a model feature's population moved since training? The population stability index (PSI)
of each feature against a reference frozen in the model artifact, with a test of "no change".

The bins are cut once, on the training sample, and frozen with its shares: cutting them again on
each week's data would move them with the data and raise false alarms. A numeric feature gets
the deciles of the reference as right-closed edges (unique values only, taken from the sample
itself, so a count with many zeros gets fewer bins and no bin falls between two whole numbers);
a categorical feature (integer codes) one bin per code seen and an "other" bin for codes never
seen. Every feature has a "missing" bin, empty in the reference if nothing was missing there.

PSI = sum over bins of (q - p) * log(q / p), p the reference share, q the week's. A share of 0
is taken as EPSILON (1e-4) so a bin empty in one sample gives a finite PSI; a bin empty in both
is left out. With no change, PSI (twice a symmetric Kullback-Leibler divergence, to second order
Pearson's chi-square over the sample sizes) is about (1/n + 1/m) * chi2(B - 1) distributed for
B bins with mass, n and m the two sample sizes: that gives each feature a p-value. A feature
alarms when the p-value is below alpha / features (Bonferroni: at most alpha false alarms a week
over all features) AND the PSI is at least min_psi: a weekly sample of thousands makes a
harmless shift significant, so the size of the shift must matter too.

The reference's floats are rounded to 9 significant digits (`common.exact.round_sig`) when it
is built and everything is computed from the rounded values, so its JSON is the same bytes on
every machine and a reloaded reference gives the same PSI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2

from common.exact import log, round_sig

EPSILON = 1e-4  # the share an empty bin counts as, so PSI stays finite
DECILES = 10
NUMERIC, CATEGORICAL = "numeric", "categorical"
COLUMNS = ["feature", "psi", "bins", "n_ref", "n_new", "p_value", "alarm"]


@dataclass(frozen=True)
class FeatureReference:
    """One feature's frozen bins and reference shares.

    `shares` has one entry per bin: numeric, len(edges) + 1 value bins, (-inf, e1], (e1, e2], ...,
    (ek, inf); categorical, one per code then "other"; then, for both, "missing". `median` is
    the typical value reason codes compare against: the median of the values present, for a
    categorical feature its most common code (a median of codes means nothing); None when every
    value is missing.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...]
    codes: tuple[int, ...]
    shares: tuple[float, ...]
    n: int
    median: float | None

    def labels(self) -> list[str]:
        """A name for each bin, in the order of `shares`."""
        if self.kind == CATEGORICAL:
            values = [str(c) for c in self.codes] + ["other"]
        else:
            bounds = ["-inf", *(f"{e:g}" for e in self.edges), "inf"]
            values = [f"({lo}, {hi}]" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
            values[-1] = values[-1][:-1] + ")"
        return [*values, "missing"]

    def bin_counts(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """How many of `values` fall in each bin (the layout of `shares`)."""
        x = _floats(values, self.name)
        missing = np.isnan(x)
        x = x[~missing]
        if self.kind == CATEGORICAL:
            codes = np.asarray(self.codes, dtype=np.float64)
            pos = np.searchsorted(codes, x)
            known = pos < len(codes)
            known[known] = codes[pos[known]] == x[known]
            counts = np.bincount(pos[known], minlength=len(codes))
            counts = np.append(counts, np.count_nonzero(~known))
        else:
            # side="left": a value equal to an edge belongs to the bin that edge closes
            pos = np.searchsorted(np.asarray(self.edges, dtype=np.float64), x, side="left")
            counts = np.bincount(pos, minlength=len(self.edges) + 1)
        return np.append(counts, np.count_nonzero(missing)).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "edges": list(self.edges),
                "codes": list(self.codes), "shares": list(self.shares), "n": self.n,
                "median": self.median}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureReference:
        median = d["median"]
        return cls(name=str(d["name"]), kind=d["kind"],
                   edges=tuple(float(e) for e in d["edges"]),
                   codes=tuple(int(c) for c in d["codes"]),
                   shares=tuple(float(s) for s in d["shares"]), n=int(d["n"]),
                   median=None if median is None else float(median))


@dataclass(frozen=True)
class Reference:
    """The frozen reference of every model feature, in the model's feature order."""

    features: tuple[FeatureReference, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureReference:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no reference for feature {name!r}; it has {self.names}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; the floats were rounded when the reference was built."""
        return {"features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reference:
        return cls(features=tuple(FeatureReference.from_dict(f) for f in d["features"]))


def build_reference(frame: pd.DataFrame, features: list[str],
                    categorical: list[str]) -> Reference:
    """The reference of `features` on the training sample `frame`; `categorical` (a subset of
    `features`) hold integer codes."""
    unknown = sorted(set(categorical) - set(features))
    if unknown:
        raise ValueError(f"categorical feature(s) {unknown} are not among the features")
    _require(frame, features)
    return Reference(features=tuple(
        _build_one(name, frame[name], name in categorical) for name in features))


def psi(reference: Reference, frame: pd.DataFrame, *, alpha: float = 0.01,
        min_psi: float = 0.1) -> pd.DataFrame:
    """Each feature's PSI of `frame` against the reference, its p-value under "no change" and
    whether it alarms (p-value < alpha / features and PSI >= min_psi). An empty frame gives
    no PSI (NaN) and no alarm."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha is a false-alarm rate: set it between 0 and 1, not {alpha}")
    if min_psi < 0.0:
        raise ValueError(f"min_psi is a PSI: set it to 0 or more, not {min_psi}")
    _require(frame, reference.names)
    threshold = alpha / max(len(reference.features), 1)
    rows = []
    for ref in reference.features:
        m = len(frame)
        p = np.asarray(ref.shares, dtype=np.float64)
        used = p > 0.0
        if m == 0 or ref.n == 0:
            value, p_value, bins = float("nan"), float("nan"), int(used.sum())
        else:
            q = ref.bin_counts(frame[ref.name]) / m
            used |= q > 0.0
            bins = int(used.sum())
            p_used, q_used = np.maximum(p[used], EPSILON), np.maximum(q[used], EPSILON)
            value = round_sig(np.sum((q_used - p_used) * log(q_used / p_used)))
            # a single bin (or none) cannot move: nothing to test
            p_value = round_sig(chi2.sf(value / (1.0 / ref.n + 1.0 / m), bins - 1)) \
                if bins >= 2 else 1.0
        rows.append({"feature": ref.name, "psi": value, "bins": bins, "n_ref": ref.n,
                     "n_new": m, "p_value": p_value,
                     "alarm": bool(p_value < threshold and value >= min_psi)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _build_one(name: str, values: pd.Series, categorical: bool) -> FeatureReference:
    x = _floats(values, name)
    present = x[~np.isnan(x)]
    if categorical:
        if not np.all(np.isfinite(present) & (present == np.floor(present))):
            raise ValueError(f"categorical feature {name!r} must hold integer codes")
        codes, counts = np.unique(present, return_counts=True)
        median = float(codes[np.argmax(counts)]) if len(codes) else None
        ref = FeatureReference(name, CATEGORICAL, (), tuple(int(c) for c in codes), (), len(x),
                               median)
    else:
        finite = np.sort(present[np.isfinite(present)])
        edges = ()
        if len(finite):
            # the k-th decile is the smallest value with at least k/10 of the sample at or
            # below it: integer arithmetic, so no float rounding picks the next value
            k = (np.arange(1, DECILES) * len(finite) + DECILES - 1) // DECILES - 1
            edges = tuple(np.unique(round_sig(finite[k])).tolist())
        median = round_sig(np.median(finite)) if len(finite) else None
        ref = FeatureReference(name, NUMERIC, edges, (), (), len(x), median)
    counts = ref.bin_counts(values)
    shares = tuple(round_sig(counts / len(x)).tolist()) if len(x) else (0.0,) * len(counts)
    return FeatureReference(ref.name, ref.kind, ref.edges, ref.codes, shares, ref.n, ref.median)


def _floats(values: pd.Series | np.ndarray, name: str) -> np.ndarray:
    """The values as float64, missing ones (None, NaN, pd.NA) as NaN."""
    try:
        return pd.to_numeric(pd.Series(values), errors="raise").astype("float64").to_numpy()
    except (TypeError, ValueError) as err:
        raise ValueError(f"feature {name!r} is not numeric: {err}") from None


def _require(frame: pd.DataFrame, names: list[str]) -> None:
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise ValueError(f"the frame has no column(s) {absent}")


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class References:
    """The reference pooled over every day, and one per weekday.

    A business's week has a rhythm (fewer sends on its weekend), so "days since the last send"
    on a Sunday differs from the same feature pooled over all days by a PSI of about 0.1 in
    the simulated world, every week: an alarm that means nothing. Weekly scoring runs on a
    fixed weekday, so each scoring is compared with that weekday's reference (the pooled one
    where a weekday has too few rows)."""

    pooled: Reference
    by_weekday: dict[int, Reference]  # Monday = 0
    first_day: str  # the days the reference covers (ISO dates)
    last_day: str

    def for_day(self, day) -> tuple[Reference, str]:
        """The reference for a scoring on `day`, and its name ("Sunday", or "all days")."""
        weekday = pd.Timestamp(day).weekday()
        if weekday in self.by_weekday:
            return self.by_weekday[weekday], WEEKDAYS[weekday]
        return self.pooled, "all days"

    def medians(self) -> dict[str, Any]:
        return {f.name: f.median for f in self.pooled.features}

    def to_dict(self) -> dict[str, Any]:
        return {"first_day": self.first_day, "last_day": self.last_day,
                "pooled": self.pooled.to_dict(),
                "by_weekday": {WEEKDAYS[k]: r.to_dict() for k, r in sorted(self.by_weekday.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> References:
        return cls(Reference.from_dict(d["pooled"]),
                   {WEEKDAYS.index(k): Reference.from_dict(r) for k, r in d["by_weekday"].items()},
                   d["first_day"], d["last_day"])


def build_references(frame: pd.DataFrame, features: list[str], categorical: list[str], *,
                     t: str = "t", min_rows: int = 1000) -> References:
    """References from feature rows of customers at risk on past days (column `t`): pooled, and
    per weekday where the weekday has at least `min_rows` rows."""
    days = pd.to_datetime(frame[t])
    weekday = days.dt.weekday.to_numpy()
    by_weekday = {int(k): build_reference(frame[weekday == k], features, categorical)
                  for k in range(7) if int((weekday == k).sum()) >= min_rows}
    return References(build_reference(frame, features, categorical), by_weekday,
                      days.min().date().isoformat(), days.max().date().isoformat())
