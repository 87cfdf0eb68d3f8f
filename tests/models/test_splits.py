"""Out-of-time split: ordered slices, no overlap, purged label windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import splits


def _days(start="2024-01-01", n=400, per_day=3):
    return pd.Series(np.repeat(pd.date_range(start, periods=n, freq="D"), per_day))


def test_slices_are_ordered_disjoint_and_purged():
    t = _days()
    s = splits.by_time(t, test_days=60, calibration_days=90, horizon_days=30)
    days = t.to_numpy()
    b = s.boundaries
    assert str(b.last) == "2025-02-03" and str(b.test_start) == "2024-12-06"
    assert str(b.cal_start) == "2024-09-07"
    assert not set(s.train) & set(s.cal) and not set(s.cal) & set(s.test)
    assert days[s.train].max() < days[s.cal].min() < days[s.test].min()
    # purged: every kept label window [t, t + 30) closes before the next slice starts
    assert (days[s.train] + np.timedelta64(30, "D") <= np.datetime64(b.cal_start)).all()
    assert (days[s.cal] + np.timedelta64(30, "D") <= np.datetime64(b.test_start)).all()
    assert s.purged == 2 * 29 * 3  # t in (start - 30 days, start): 29 days before each slice
    assert len(s.test) == 60 * 3


def test_too_short_history_says_what_to_change():
    with pytest.raises(splits.SplitError, match="the train slice is empty.*test_days=300"):
        splits.by_time(_days(n=200), test_days=300, calibration_days=60, horizon_days=30)


def test_time_folds_only_look_back():
    t = _days(n=300, per_day=1)
    folds = splits.time_folds(t, folds=4, horizon_days=30)
    assert len(folds) == 3
    days = t.to_numpy()
    for fit, pred in folds:
        assert (days[fit] + np.timedelta64(30, "D") <= days[pred].min()).all()
    assert sum(len(p) for _, p in folds) == 300 - 75
