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
    # each candidate's error at the scoring day, read off the windows: carrying the newest
    # window forward misses the drift over the gap (two windows: 0.5 * 112 / 365 = 0.15), the
    # pooled level misses each window's shift, the line misses little
    shifts = np.array([w.shift for w in fit.windows])
    assert fit.sds["none"] == pytest.approx(np.sqrt(np.mean(shifts ** 2)), rel=1e-6)
    assert fit.sds["recent"] == pytest.approx(0.15, abs=0.05)
    assert fit.sds["trend"] < 0.06 and fit.sd == fit.sds["trend"]
    # blend weighs recent and trend by the inverse of their errors' variance: on a steady drift
    # the line's error is the smaller, so blend sits between them, nearer trend
    w = (1 / fit.sds["recent"] ** 2) / (1 / fit.sds["recent"] ** 2 + 1 / fit.sds["trend"] ** 2)
    assert fit.candidates["blend"] == pytest.approx(
        w * fit.candidates["recent"] + (1 - w) * fit.candidates["trend"], rel=1e-6)
    assert fit.candidates["recent"] < fit.candidates["blend"] < fit.candidates["trend"]
    assert abs(fit.candidates["blend"] - fit.candidates["trend"]) < abs(
        fit.candidates["blend"] - fit.candidates["recent"])
    assert min(fit.sds["recent"], fit.sds["trend"]) <= fit.sds["blend"] <= max(
        fit.sds["recent"], fit.sds["trend"])
    blend = level.fit(p, y, t, as_of=as_of, method="blend", window_days=56, windows=6)
    assert blend.shift == fit.candidates["blend"] and blend.sd == fit.sds["blend"]


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
    blend = level.fit(p, y, t, as_of=np.datetime64("2024-05-01"), method="blend",
                      window_days=56, windows=6)
    assert blend.shift == fit.candidates["recent"]
    assert any("blend falls back to recent's shift" in n for n in blend.notes)
    recent = level.fit(p, y, t, as_of=np.datetime64("2024-05-01"), method="recent",
                       window_days=56, windows=6)
    assert recent.notes == ()  # the trend's fallback is not recent's business
    none = level.fit(p[:20], y[:20], t[:20], as_of=np.datetime64("2024-05-01"),
                     method="recent", window_days=56, windows=6)
    assert none.shift == 0
    assert any("recent falls back to the pooled level" in n for n in none.notes)


def _history(rng, scatter: float):
    """Labelled points over 11 months whose true log-odds shift follows a line plus, per 56-day
    stretch, an offset of sd `scatter`; and the true shift on the scoring day 88 days on."""
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-12-01"))
    t = np.repeat(days, 150)
    age = (t - t.min()).astype(float) / 365
    stretch = ((t.max() - t).astype(int)) // 56  # the same stretches as the windows
    offset = rng.normal(0, scatter, stretch.max() + 2)
    p = rng.uniform(0.03, 0.4, len(t))
    y = (rng.random(len(t)) < special.expit(special.logit(p) + 0.4 * age + offset[stretch])
         ).astype(float)
    as_of = np.datetime64("2024-12-01") + np.timedelta64(88, "D")
    return p, y, t, as_of, 0.4 * (as_of - t.min()).astype(float) / 365 + offset[-1]


@pytest.mark.parametrize("scatter", [0.0, 0.1])
def test_the_trends_standard_error_covers_the_scoring_days_level(scatter):
    """Over many histories, the scoring day's true shift lies within 1.96 standard errors of
    trend's in about 95 % of them, with or without a scatter of the level around its line (read
    off the windows' residuals, with the t(4) allowance for reading it off 4 of them: without
    it, 86 % at scatter 0.1); each candidate has one, and the chosen one is `sd`. (0.93 to 0.99
    on seeds 7, 11, 12, 13 at scatter 0, 0.1 and 0.2.)"""
    rng = np.random.default_rng(7)
    hits, sds = 0, []
    trials = 150
    for _ in range(trials):
        p, y, t, as_of, truth = _history(rng, scatter)
        fit = level.fit(p, y, t, as_of=as_of, method="trend", window_days=56, windows=6)
        assert fit.sd == fit.sds["trend"] and set(fit.sds) == set(level.METHODS)
        hits += abs(fit.shift - truth) <= 1.96 * fit.sd
        sds.append(fit.sd)
    assert 0.9 <= hits / trials <= 0.995
    if scatter:  # the line's error grows with the scatter around it
        assert np.median(sds) > 0.1
    else:
        assert np.median(sds) < 0.1


def test_the_level_sd_rides_in_the_calibrator():
    cal = Calibrator("sigmoid", (1.1, -0.2), (), 0.3, 0.05)
    assert Calibrator.from_dict(cal.to_dict()) == cal
    assert "shift_sd" not in Calibrator("sigmoid", (1.1, -0.2), (), 0.3).to_dict()


def test_sharpness_reads_the_slope_and_its_noise():
    """Probabilities too timid by a known slope: the fitted slope finds it within its standard
    error, and the implied sd is the slope's distance from 1 net of that error; probabilities
    as sharp as promised give a slope near 1 and an sd of (nearly) 0."""
    from models.calibration import sharpness

    rng = np.random.default_rng(8)
    p = rng.beta(1.2, 6, 40_000)
    timid = (rng.random(len(p)) < special.expit(1.2 * special.logit(p) + 0.3)).astype(float)
    s = sharpness(p, timid)
    assert abs(s.slope - 1.2) < 3 * s.se and 0.005 < s.se < 0.03
    assert s.sd == pytest.approx(np.sqrt((s.slope - 1) ** 2 - s.se ** 2), rel=1e-6)
    fair = sharpness(p, (rng.random(len(p)) < p).astype(float))
    assert abs(fair.slope - 1) < 3 * fair.se and fair.sd < 2 * fair.se
    # against an independent fit and the inverse of its Fisher information
    from sklearn.linear_model import LogisticRegression
    x = special.logit(p)
    lr = LogisticRegression(C=1e8, tol=1e-10, max_iter=1000).fit(x[:, None], timid)
    assert s.slope == pytest.approx(lr.coef_[0, 0], abs=1e-5)
    w = lr.predict_proba(x[:, None])[:, 1]
    design = np.column_stack([x, np.ones_like(x)])
    info = design.T @ (design * (w * (1 - w))[:, None])
    assert s.se == pytest.approx(np.sqrt(np.linalg.inv(info)[0, 0]), rel=1e-4)
    flat = sharpness(np.full(100, 0.2), (np.arange(100) < 20).astype(float))
    assert flat.sd == 0 and flat.se > 100  # no slope to read: nothing carried


def test_the_sharpness_sd_rides_in_the_calibrator():
    cal = Calibrator("sigmoid", (1.1, -0.2), (), 0.3, 0.05, 0.04)
    assert Calibrator.from_dict(cal.to_dict()) == cal
    assert "slope_sd" not in Calibrator("sigmoid", (1.1, -0.2), (), 0.3, 0.05).to_dict()
