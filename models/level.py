"""A probability level that follows the business: the calibrated level against the latest
labelled weeks.

The production model's calibrator is fitted on out-of-fold scores pooled over most of the
history. When the base rate moves, that pooled level is the history's, not the scoring day's:
value at risk, the profit-sized list and capacity planning all rest on it. Each candidate here is
one shift on the log-odds, added after the calibrator, estimated from the production model's own
calibrated probabilities of its labelled points (so never from a week a backtest judges). Not
from the out-of-fold points: each fold model was fitted on older data than the production
model, so in a business whose base rate moves their lag is larger than its lag, and the
calibrator fitted on them already carries part of it; a shift read off them counted the drift
twice (bench/RESULTS.md: the drifting world, 0.0127 too high against realised churn). These
probabilities are in-sample (the production model was fitted on these labels), so a window's
shift leans toward 0; what is left is the calibrator's offset on the production model's scores
and the base rate's movement, which `trend` carries to the scoring day.

- `none`: 0, the pooled level.
- `recent`: the shift that makes the mean calibrated probability of the points of the last
  `window_days` labelled days equal their realised churn.
- `trend`: the same shift per window over the last `windows` windows, a weighted line through
  them in time, read at the scoring day: the level carried across the horizon + grace gap
  between the newest label and the scoring day.
- `blend` (the default): recent and trend, each weighed by the inverse of its error's variance
  on the windows (`sds` below): where the level moves steadily the line's error is the smaller,
  where it scatters without a trend the two weigh alike.

`fit` computes every candidate (train_summary.json keeps them, so a backtest can compare them
on the same models) and returns the one `train.level` names, with its standard error at the
scoring day (`sd`, on the log-odds): how far the level read so may be from the scoring day's, which
the expected-performance bands carry (scoring.expected). The level is an estimate, read weeks
before the scoring day; a band that took it as known would flag a week for the level's own
uncertainty. Each candidate's error is measured on the windows, never on a judged week:

- `none`: the root mean square of the windows' shifts (none's error on each window).
- `recent`: the root mean square of the change of the shift across the gap to the scoring day
  (window k against window k - g, g the gap in windows), on the windows that have such a pair.
- `blend`: the two weighted standard errors' mean (both are read off the same windows).
- `trend`: the line's standard error at the scoring day, from each window's sampling variance
  (1 / sum p(1 - p) of its points) plus the scatter of the windows around the line beyond it
  (tau^2), and the scoring day's own tau^2; the tau^2 part with the t(n - 2) allowance for being
  read off n - 2 residuals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special, stats

from common.exact import round_sig
from models.calibration import logit

METHODS = ("none", "recent", "trend", "blend")
MAX_SHIFT = 3.0  # a log-odds shift beyond this is no longer a level


@dataclass(frozen=True)
class Window:
    start: str  # first labelled day of the window
    end: str  # the day after its last
    points: int
    churn: float
    mean_probability: float
    shift: float
    info: float = 0.0  # sum of p(1 - p) at the shifted level: 1 / info is the shift's variance


@dataclass(frozen=True)
class LevelFit:
    method: str
    shift: float  # the chosen candidate's
    candidates: dict[str, float]
    sd: float  # the chosen candidate's standard error at the scoring day (log-odds)
    sds: dict[str, float]  # every candidate's
    windows: tuple[Window, ...]
    as_of: str  # the scoring day the trend is read at
    notes: tuple[str, ...] = ()  # where the chosen method fell back to another

    def to_dict(self) -> dict:
        return asdict(self)


def shifted(p: np.ndarray, shift: float) -> np.ndarray:
    """Probabilities moved by `shift` on the log-odds."""
    if shift == 0:
        return np.asarray(p, dtype=np.float64)
    return special.expit(logit(np.asarray(p, dtype=np.float64)) + shift)


def level_shift(p: np.ndarray, y: np.ndarray) -> float:
    """The log-odds shift d with mean(expit(logit(p) + d)) = mean(y) (monotone in d: bisection
    on plain sums, the same bits on every machine)."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    target = float(np.mean(y))
    lo, hi = -MAX_SHIFT, MAX_SHIFT
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(shifted(p, mid))) < target:
            lo = mid
        else:
            hi = mid
    return round_sig((lo + hi) / 2)


def fit(p: np.ndarray, y: np.ndarray, t: np.ndarray, *, as_of: np.datetime64, method: str,
        window_days: int, windows: int) -> LevelFit:
    """Every candidate from the production model's calibrated probabilities `p` of its labelled
    points, their labels `y` and point days `t`; the chosen one is `method`'s."""
    if method not in METHODS:
        raise ValueError(f"level method {method!r} is not one of {METHODS}")
    days = np.asarray(t, dtype="datetime64[D]")
    end = days.max() + np.timedelta64(1, "D")
    rows = []
    for k in range(windows):
        hi = end - np.timedelta64(k * window_days, "D")
        lo = hi - np.timedelta64(window_days, "D")
        inside = (days >= lo) & (days < hi)
        if inside.sum() < 50 or len(set(np.asarray(y)[inside].tolist())) < 2:
            break
        shift = level_shift(p[inside], y[inside])
        q = shifted(p[inside], shift)
        rows.append(Window(str(lo), str(hi), int(inside.sum()), round_sig(float(y[inside].mean())),
                           round_sig(float(p[inside].mean())), shift,
                           round_sig(float(np.sum(q * (1 - q))))))
    rows.reverse()  # oldest first
    recent = rows[-1].shift if rows else 0.0
    trend = recent
    notes = []
    if not rows:
        notes.append(f"no window of {window_days} labelled days holds 50 points with churners "
                     f"and stayers: {method} falls back to the pooled level (no shift)")
    elif len(rows) < 3 and method in ("trend", "blend"):
        notes.append(f"only {len(rows)} window(s) of {window_days} labelled days hold 50 points "
                     f"with churners and stayers (a line needs 3): {method} falls back to "
                     "recent's shift, the newest window's")
    # days from the scoring day to each window's middle
    mid = np.array([(np.datetime64(w.start) + (np.datetime64(w.end) - np.datetime64(w.start)) / 2
                     - np.datetime64(as_of, "D")).astype(np.float64) for w in rows])
    shift = np.array([w.shift for w in rows])
    sds = {"none": _rms(shift), "recent": _sd_recent(rows, mid, window_days)}
    sds["trend"] = sds["recent"]
    if len(rows) >= 3:
        trend, sds["trend"] = _line_at_scoring_day(rows, mid, shift)
    candidates = {"none": 0.0, "recent": recent, "trend": trend}
    candidates["blend"], sds["blend"] = _blend(candidates, sds)
    sds = {k: round_sig(v) for k, v in sds.items()}
    return LevelFit(method, candidates[method], candidates, sds[method], sds, tuple(rows),
                    str(np.datetime64(as_of, "D")), tuple(notes) if method != "none" else ())


def _blend(candidates: dict[str, float], sds: dict[str, float]) -> tuple[float, float]:
    """recent and trend weighed by the inverse of their errors' variance on the windows, and the
    weighted mean of their standard errors (the two are read off the same windows, so their
    errors move together: the blend's is taken no smaller than that)."""
    r, t = sds["recent"], sds["trend"]
    # an error of 0 (one window's pair, or equal shifts): the candidate that made it
    weight = (1 / r ** 2) / (1 / r ** 2 + 1 / t ** 2) if r > 0 and t > 0 else (
        0.5 if r == t else float(r == 0))
    shift = weight * candidates["recent"] + (1 - weight) * candidates["trend"]
    return round_sig(float(np.clip(shift, -MAX_SHIFT, MAX_SHIFT))), weight * r + (1 - weight) * t


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x) / len(x))) if len(x) else 0.0


def _sd_recent(rows: list[Window], mid: np.ndarray, window_days: int) -> float:
    """How much the shift moved over the gap from the newest window to the scoring day, in the
    windows' history; the newest window's own sampling error where no pair spans the gap."""
    if not rows:
        return 0.0
    gap = max(1, int(round(-mid[-1] / window_days)))
    shift = np.array([w.shift for w in rows])
    if len(rows) > gap:
        return _rms(shift[gap:] - shift[:-gap])
    return float(np.sqrt(1 / rows[-1].info)) if rows[-1].info > 0 else 0.0


def _line_at_scoring_day(rows: list[Window], mid: np.ndarray,
                         shift: np.ndarray) -> tuple[float, float]:
    """The line through the windows' shifts (weighted by their points) read at the scoring day
    (x = 0), and its standard error there: the line's own plus the scoring day's scatter."""
    weight = np.array([w.points for w in rows], dtype=np.float64)
    mx, my = np.sum(weight * mid) / np.sum(weight), np.sum(weight * shift) / np.sum(weight)
    sxx = np.sum(weight * (mid - mx) ** 2)
    slope = np.sum(weight * (mid - mx) * (shift - my)) / sxx if sxx > 0 else 0.0
    at = float(np.clip(my - slope * mx, -MAX_SHIFT, MAX_SHIFT))
    # the value at 0 as a weighted sum of the shifts: sum(c * shift)
    c = weight / np.sum(weight) - (mx * weight * (mid - mx) / sxx if sxx > 0 else 0.0)
    sampling = np.array([1 / w.info if w.info > 0 else 0.0 for w in rows])
    residual = shift - (my + slope * (mid - mx))
    df = len(rows) - 2
    tau2 = max(0.0, float(np.sum(residual ** 2)) / df - float(np.mean(sampling))) if df > 0 else 0.0
    # tau^2 is read off n - 2 residuals (4 for 6 windows): its share of the variance gets the
    # t(n - 2) allowance, (t_0.975 / z_0.975)^2, so that +-1.96 sd holds about 95 % (a normal
    # allowance held 86 % on histories whose level scatters around its line)
    allowance = (float(stats.t.ppf(0.975, df)) / float(stats.norm.ppf(0.975))) ** 2 if df > 0 \
        else 1.0
    var = float(np.sum(c * c * sampling)) + (float(np.sum(c * c)) + 1) * tau2 * allowance
    return round_sig(at), float(np.sqrt(var))
