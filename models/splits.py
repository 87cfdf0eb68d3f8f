"""Out-of-time splits: oldest points train, the next calibrate, the newest test.

Slice sizes are durations counted back from the last labelled observation date, so the split
fits any export. A training point whose label window [t, t + horizon) reaches into a later
slice is purged: its label would be decided by the same renewals the later slice is judged on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.errors import UserError


@dataclass(frozen=True)
class Boundaries:
    last: dt.date  # last labelled observation date
    cal_start: dt.date  # first day of the calibration slice
    test_start: dt.date  # first day of the test slice

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Split:
    boundaries: Boundaries
    train: np.ndarray  # row positions
    cal: np.ndarray
    test: np.ndarray
    purged: int


class SplitError(UserError):
    """The labelled points cannot be split as train.test_days / calibration_days ask."""


def by_time(t: pd.Series, *, test_days: int, calibration_days: int, horizon_days: int) -> Split:
    """Positions of the train / calibration / test rows of the labelled points dated `t`."""
    days = pd.to_datetime(t).to_numpy(dtype="datetime64[D]")
    if len(days) == 0:
        raise SplitError("no labelled observation points to split")
    last = days.max()
    test_start = last - np.timedelta64(test_days - 1, "D")
    cal_start = test_start - np.timedelta64(calibration_days, "D")
    horizon = np.timedelta64(horizon_days, "D")
    in_train = days < cal_start
    in_cal = (days >= cal_start) & (days < test_start)
    keep_train = in_train & (days + horizon <= cal_start)
    keep_cal = in_cal & (days + horizon <= test_start)
    test = days >= test_start
    purged = int((in_train & ~keep_train).sum() + (in_cal & ~keep_cal).sum())
    split = Split(
        Boundaries(last.astype(dt.date), cal_start.astype(dt.date), test_start.astype(dt.date)),
        np.flatnonzero(keep_train), np.flatnonzero(keep_cal), np.flatnonzero(test), purged,
    )
    for name in ("train", "cal", "test"):
        if len(getattr(split, name)) == 0:
            raise SplitError(
                f"the {name} slice is empty: the labelled points span {days.min()}..{last}, "
                f"too short for test_days={test_days} + calibration_days={calibration_days} "
                f"+ horizon_days={horizon_days}; shorten them in params.yaml (train section)")
    return split


def time_folds(t: pd.Series, *, folds: int, horizon_days: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over all labelled points: (fit rows, predict rows) pairs.

    Fold k predicts the k-th of `folds` equal date ranges from a model fit on every earlier
    point whose label window closes before that range starts (purged like the main split).
    """
    days = pd.to_datetime(t).to_numpy(dtype="datetime64[D]")
    lo, hi = days.min(), days.max() + np.timedelta64(1, "D")
    edges = lo + (np.arange(folds + 1) * (hi - lo) / folds).astype("timedelta64[D]")
    horizon = np.timedelta64(horizon_days, "D")
    pairs = []
    for k in range(1, folds):
        start, end = edges[k], edges[k + 1] if k + 1 < folds else hi
        fit = np.flatnonzero(days + horizon <= start)
        pred = np.flatnonzero((days >= start) & (days < end))
        if len(fit) and len(pred):
            pairs.append((fit, pred))
    return pairs
