"""models.level: the log-odds shift that matches a window's churn, and the candidates on a
history whose base rate drifts (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from models import level
from models.calibration import Calibrator


def test_the_shift_makes_the_mean_probability_the_churn():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.5, 20_000)
    y = (rng.random(len(p)) < special.expit(special.logit(p) + 0.4)).astype(float)
    d = level.level_shift(p, y)
    assert abs(float(level.shifted(p, d).mean()) - y.mean()) < 1e-6
    assert 0.3 < d < 0.5  # the true shift, within sampling noise
    assert level.level_shift(p, (rng.random(len(p)) < p).astype(float)) == pytest.approx(0, abs=0.06)
    assert np.array_equal(level.shifted(p, 0.0), p)


def test_candidates_on_a_drifting_history():
    """The truth's log-odds rise by 0.5 a year over the pooled level: `recent` catches the
    latest windows' level, `trend` carries it on to the scoring day 88 days later."""
    rng = np.random.default_rng(2)
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-12-01"))
    t = np.repeat(days, 400)
    age = (t - t.min()).astype(float) / 365
    p = rng.uniform(0.03, 0.4, len(t))  # the pooled calibrator's probabilities
    true_shift = 0.5 * (age - age.mean())
    y = (rng.random(len(t)) < special.expit(special.logit(p) + true_shift)).astype(float)
    as_of = np.datetime64("2024-12-01") + np.timedelta64(88, "D")
    fit = level.fit(p, y, t, as_of=as_of, method="trend", window_days=56, windows=6)
    at_as_of = 0.5 * ((as_of - t.min()).astype(float) / 365 - age.mean())
    last = 0.5 * (((t.max() - np.timedelta64(28, "D")) - t.min()).astype(float) / 365
                  - age.mean())
    assert fit.method == "trend" and fit.shift == fit.candidates["trend"]
    assert fit.candidates["none"] == 0.0
    assert abs(fit.candidates["recent"] - last) < 0.06
    assert abs(fit.candidates["trend"] - at_as_of) < 0.08
    assert fit.candidates["trend"] > fit.candidates["recent"] > 0
    assert len(fit.windows) == 6 and fit.windows[0].start < fit.windows[-1].start
    assert level.fit(p, y, t, as_of=as_of, method="none", window_days=56, windows=6).shift == 0


def test_a_calibrator_with_a_shift_keeps_its_bytes_without_one():
    cal = Calibrator("sigmoid", (1.1, -0.2), ())
    assert "shift" not in cal.to_dict()
    moved = Calibrator.from_dict(cal.to_dict() | {"shift": 0.3})
    x = np.array([0.05, 0.2, 0.6])
    np.testing.assert_allclose(special.logit(moved(x)) - special.logit(cal(x)), 0.3, atol=1e-9)
    iso = Calibrator("isotonic", (0.0, 1.0), (0.1, 0.9), 0.3)
    np.testing.assert_allclose(special.logit(iso(x)) - special.logit(
        Calibrator("isotonic", (0.0, 1.0), (0.1, 0.9))(x)), 0.3, atol=1e-9)


def test_a_fallback_is_said():
    """Too few labelled windows for a line: trend falls back to recent, and says so."""
    rng = np.random.default_rng(3)
    t = np.repeat(np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-01")), 30)
    p = rng.uniform(0.05, 0.3, len(t))
    y = (rng.random(len(t)) < p).astype(float)
    fit = level.fit(p, y, t, as_of=np.datetime64("2024-05-01"), method="trend", window_days=56,
                    windows=6)
    assert fit.candidates["trend"] == fit.candidates["recent"]
    assert any("trend falls back to recent's shift" in n for n in fit.notes)
    recent = level.fit(p, y, t, as_of=np.datetime64("2024-05-01"), method="recent",
                       window_days=56, windows=6)
    assert recent.notes == ()  # the trend's fallback is not recent's business
    none = level.fit(p[:20], y[:20], t[:20], as_of=np.datetime64("2024-05-01"),
                     method="recent", window_days=56, windows=6)
    assert none.shift == 0
    assert any("recent falls back to the pooled level" in n for n in none.notes)
