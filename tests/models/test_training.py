"""The trained model: calibrated, behaving the way the domain says, strict about its inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalogue import CATEGORICAL, FEATURES
from models import calibration, lgbm
from models.classifier import ChurnClassifier, ContractMismatch
from tests.pipeline.helpers import recommit


@pytest.fixture(scope="module")
def test_points(built, trained):
    pred = trained.predictions[["customer_id", "t"]]
    table = pd.read_parquet(built.features_table)
    return pred.merge(table, on=["customer_id", "t"])


def test_outputs_and_summary(built, trained):
    s = trained.summary
    assert s.points.train > 5000 and s.points.test > 2000
    assert s.boundaries.cal_start < s.boundaries.test_start <= s.boundaries.last
    assert 1 <= s.best_iteration < 3000
    assert trained.uninformative == ()
    model = {"booster.txt", "calibrator.json", "contract.json"}
    assert {p.name for p in built.split_model.iterdir()} == model
    # the production model carries the drift reference the weekly scoring compares against
    assert {p.name for p in built.model.iterdir()} == model | {"reference.json"}
    assert "run_id" not in (built.model / "contract.json").read_text()


def test_calibration_lowers_brier_on_held_out_data(built):
    """A model fitted on churn-enriched rows is overconfident; the calibrator, fitted on one
    half of fresh rows, repairs the other half."""
    table = pd.read_parquet(built.features_table)
    data = table[table["label"].notna()].sort_values("t").reset_index(drop=True)
    fit, fresh = data.iloc[: len(data) // 2], data.iloc[len(data) // 2:]
    enriched = pd.concat([fit, fit[fit["label"] == 1], fit[fit["label"] == 1]])
    booster = lgbm.fit(enriched[list(FEATURES)], enriched["label"], categorical=list(CATEGORICAL),
                       params={"num_threads": 2}, rounds=100, seed=1)
    a, b = fresh.iloc[::2], fresh.iloc[1::2]
    for method in ("isotonic", "sigmoid"):
        cal = calibration.fit(booster.predict(a[list(FEATURES)]), a["label"], method)
        raw = booster.predict(b[list(FEATURES)])
        y = b["label"].to_numpy()
        assert np.mean((cal(raw) - y) ** 2) < 0.9 * np.mean((raw - y) ** 2), method
        restored = calibration.Calibrator.from_dict(cal.to_dict())
        np.testing.assert_array_equal(restored(raw), cal(raw))


def _shifted(frame, **changes):
    out = frame.copy()
    for col, fn in changes.items():
        out[col] = fn(out[col]).astype("float64")
    return out


def test_directional_problem_tickets_and_fading_usage_raise_risk(trained, test_points):
    model = trained.split_model
    base = model.predict_proba(test_points)
    complaints = _shifted(test_points, tickets_billing=lambda s: s + 3,
                          tickets_problem_30=lambda s: s + 3, tickets_30=lambda s: s + 3,
                          tickets_days_since_last=lambda s: s * 0 + 2)
    assert model.predict_proba(complaints).mean() > base.mean() * 1.05
    fading = _shifted(test_points, usage_recent_active_share=lambda s: s * 0.3,
                      usage_trend=lambda s: s * 0 - 0.8,
                      usage_active_share=lambda s: s * 0.6)
    assert model.predict_proba(fading).mean() > base.mean() * 1.2


def test_directional_a_referral_lowers_risk(trained, test_points):
    model = trained.split_model
    none = _shifted(test_points, referrals_ever=lambda s: s * 0, referrals_window=lambda s: s * 0)
    one = _shifted(test_points, referrals_ever=lambda s: s * 0 + 1,
                   referrals_window=lambda s: s * 0 + 1)
    assert model.predict_proba(one).mean() < model.predict_proba(none).mean()


def test_contract_mismatch_names_the_feature(trained, test_points, tmp_path):
    model = trained.final_model
    with pytest.raises(ContractMismatch, match="feature 'usage_trend' is missing"):
        model.predict_proba(test_points.drop(columns=["usage_trend"]))
    wrong = test_points.assign(plan_code=test_points["plan_code"].astype("float64"))
    with pytest.raises(ContractMismatch, match="feature 'plan_code' has dtype float64"):
        model.predict_proba(wrong)
    with pytest.raises(ContractMismatch, match="feature 'plan_code' codes differ"):
        model.contract.check_vocab({"plan_code": ["gold"],
                                    "channel_code": model.contract.vocab["channel_code"]})
    model.save(tmp_path / "m")
    again = ChurnClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(test_points),
                                  model.predict_proba(test_points))


def test_peer_is_early_stopped_and_evaluated(built, trained, params):
    """The optional HistGradientBoosting peer: stopped on the calibration slice, scored on the
    test slice, and compared with the logistic regression by customer-paired bootstrap."""
    from pipeline import io

    assert 1 <= trained.summary.hist_gradient_boosting_iterations <= (
        params.train.hist_gradient_boosting["max_iter"])
    p = trained.predictions["p_hist_gradient_boosting"]
    assert p.between(0, 1).all() and p.nunique() > 100
    metrics = io.read_json(built.metrics_detail)
    auc = metrics["test"]["hist_gradient_boosting"]["all"]["roc_auc"]
    assert 0.6 < auc["lo"] <= auc["value"] <= auc["hi"]
    d = metrics["hist_gradient_boosting_minus_l1_logistic"]["roc_auc"]
    assert d["lo"] <= d["value"] <= d["hi"]


def test_evaluate_reports_the_expected_maximum_profit_of_each_model(built, trained, params):
    """EMPC on the test slice (models.profit.empc, checked against the published vector in
    tests/models/test_profit.py): LightGBM's ranking earns more per customer than the base
    rate's (one score for all: at best the better of contacting nobody or everybody)."""
    from models.profit import empc
    from pipeline import io

    metrics = io.read_json(built.metrics_detail)
    e = metrics["empc"]
    assert e["clv"] == params.evaluate.empc_clv and e["offer_cost"] == params.score.offer_cost
    pred = trained.predictions
    want = empc(pred["p_lightgbm"].to_numpy(), pred["label"].to_numpy(), params.evaluate.empc_clv,
                offer_cost=params.score.offer_cost, contact_cost=params.score.contact_cost)
    assert e["models"]["lightgbm"]["empc"] == pytest.approx(want.empc, rel=1e-8)
    assert e["models"]["lightgbm"]["empc"] > e["models"]["base_rate"]["empc"] >= 0
    assert 0 < e["models"]["lightgbm"]["contact_share"] < 1
    headline = io.read_json(built.metrics)
    assert headline["lightgbm"]["empc"] == e["models"]["lightgbm"]["empc"]


def test_peer_is_skipped_when_its_params_are_null(built, params, tmp_path):
    import dataclasses

    from pipeline.stages import train as train_stage

    quick = dataclasses.replace(params.train, oof_folds=2, rounds=30, early_stopping=10,
                                hist_gradient_boosting=None)
    r = train_stage.run(quick, params.labels, dataclasses.replace(built, models=str(tmp_path)),
                        log=lambda m: None)
    assert "p_hist_gradient_boosting" not in r.predictions
    assert r.summary.hist_gradient_boosting_iterations is None


def test_forward_check_prefers_calibration_only_where_scores_are_off():
    """Scores that are the true probabilities: calibrating can only add noise (isotonic's
    steps also tie scores and cost AUC). Scores that are overconfident (p**0.3): both methods
    must lower the log loss on the newer half."""
    rng = np.random.default_rng(3)
    n = 40_000
    t = np.repeat(np.arange(40), n // 40)
    p = rng.beta(1.2, 6.0, n)
    y = (rng.random(n) < p).astype(float)
    good, skipped = calibration.forward_check(p, y, t)
    assert skipped == "" and set(good) == {"raw", "sigmoid", "isotonic"}
    assert good["raw"]["log_loss"] <= good["isotonic"]["log_loss"]
    assert good["sigmoid"]["roc_auc"] == pytest.approx(good["raw"]["roc_auc"], abs=1e-12)
    assert good["isotonic"]["roc_auc"] < good["raw"]["roc_auc"]
    off, _ = calibration.forward_check(p**0.3, y, t)
    for method in ("sigmoid", "isotonic"):
        assert off[method]["log_loss"] < off["raw"]["log_loss"] - 0.05, method
        assert off[method]["ece"] < 0.5 * off["raw"]["ece"], method
    assert calibration.advice(good, "sigmoid") is None


def test_forward_check_splits_between_dates_and_says_why_it_skips():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.5, 3000)
    y = (rng.random(3000) < p).astype(float)
    # most points on the first date: the cut still falls between dates, never inside one
    t = np.r_[np.zeros(2000), np.arange(1, 11).repeat(100)]
    check, skipped = calibration.forward_check(p, y, t)
    assert skipped == "" and set(check) == {"raw", "sigmoid", "isotonic"}
    one_date, why = calibration.forward_check(p, y, np.zeros(3000))
    assert one_date == {} and why == "the calibration slice has a single date"
    y_new_one_class = np.where(t >= 1, 0.0, y)
    none, why = calibration.forward_check(p, y_new_one_class, t)
    assert none == {} and "newer half" in why and "1 label value(s)" in why
    tiny, why = calibration.forward_check(p[:300], y[:300], np.arange(300) // 30)
    assert tiny == {} and f"needs {calibration.MIN_HALF}" in why


def test_advice_names_the_better_choice_or_nothing():
    row = {"brier": 0.1, "ece": 0.01, "roc_auc": 0.8}
    check = {"raw": row | {"log_loss": 0.3400}, "sigmoid": row | {"log_loss": 0.3404},
             "isotonic": row | {"log_loss": 0.3500}}
    assert calibration.advice(check, "sigmoid") is None  # within the 0.0005 tolerance
    worse = check | {"sigmoid": row | {"log_loss": 0.3420}}
    assert calibration.advice(worse, "sigmoid").startswith("the raw scores beat sigmoid")
    assert calibration.advice(check, "isotonic") == (
        "the raw scores beat isotonic calibration here (log loss 0.3400 vs 0.3500): LightGBM's "
        "scores are already close to calibrated. The product always calibrates; the test "
        "metrics show both (lightgbm_uncalibrated).")
    iso_best = check | {"isotonic": row | {"log_loss": 0.3300}}
    assert calibration.advice(iso_best, "sigmoid") == (
        "isotonic calibration beat sigmoid here (log loss 0.3300 vs 0.3404): consider "
        "train.calibration: isotonic.")
    assert calibration.advice({}, "sigmoid") is None


def test_peer_predicts_with_its_best_stage_not_its_last(built, params):
    from models import baselines
    from models.training import labelled_points

    data = labelled_points(pd.read_parquet(built.features_table), params.train.kinds)
    x, y = data[list(FEATURES)], data["label"].to_numpy()
    cut = len(data) * 3 // 4
    hgb = dict(params.train.hist_gradient_boosting) | {"max_iter": 120, "learning_rate": 0.3}
    peer = baselines.HistGradientBoosting(list(CATEGORICAL), hgb, seed=1).fit(
        x.iloc[:cut], y[:cut], valid=(x.iloc[cut:], y[cut:]))
    stages = list(peer.model_.staged_predict_proba(peer._x(x.iloc[cut:])))
    assert peer.best_iteration_ < len(stages)  # a high learning rate overfits: it stops early
    np.testing.assert_array_equal(peer.predict_proba(x.iloc[cut:]),
                                  stages[peer.best_iteration_ - 1])

    def loss(p):
        return -np.mean(y[cut:] * np.log(p[:, 1]) + (1 - y[cut:]) * np.log(p[:, 0]))

    assert loss(stages[peer.best_iteration_ - 1]) < loss(stages[-1])


def test_peer_params_are_checked_and_wide_categories_become_numbers():
    from models import baselines

    with pytest.raises(baselines.PeerParamsError, match=r"\['early_stopping', 'n_trees'\]"):
        baselines.HistGradientBoosting(["plan"], {"early_stopping": True, "n_trees": 3}, 1)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"plan": rng.integers(0, 400, 2000).astype("int64"),
                      "usage": rng.normal(size=2000)})
    y = (x["usage"] + rng.normal(size=2000) > 0).astype(int).to_numpy()
    peer = baselines.HistGradientBoosting(["plan"], {"max_iter": 20}, 1).fit(
        x.iloc[:1500], y[:1500], valid=(x.iloc[1500:], y[1500:]))
    assert peer.numeric_codes_ == ["plan"]
    assert peer.predict_proba(x.iloc[1500:]).shape == (500, 2)


def test_evaluate_without_the_peer(built, trained, params, tmp_path):
    """train.hist_gradient_boosting: null leaves no peer column; evaluate reports the rest."""
    import dataclasses

    from pipeline.stages import evaluate as evaluate_stage

    models = tmp_path / "models"

    def drop_peer(folder):
        pred = pd.read_parquet(folder / "test_predictions.parquet")
        pred.drop(columns="p_hist_gradient_boosting").to_parquet(folder / "test_predictions.parquet")

    recommit(Path(built.models), models, drop_peer)
    paths = dataclasses.replace(built, models=str(models), evaluation=str(tmp_path / "reports"))
    quick = dataclasses.replace(params.evaluate, resamples=20, shap_sample=200)
    metrics = evaluate_stage.run(quick, paths, log=lambda m: None)
    assert set(metrics["test"]) == {"base_rate", "l1_logistic", "lightgbm",
                                    "lightgbm_uncalibrated"}
    assert "hist_gradient_boosting_minus_l1_logistic" not in metrics
    rows = dict(evaluate_stage.headline(metrics))
    assert "lightgbm - l1_logistic" in rows and "hist_gradient_boosting" not in rows
    assert (tmp_path / "reports" / "plots" / "roc.png").exists()


def test_the_level_is_read_off_the_production_model(built, trained, params):
    """The level's windows compare the production model's own calibrated probabilities (no
    shift yet) with the churn of its labelled points, not the out-of-fold fold models': those
    are older than it, so where the base rate moves their lag is not its lag."""
    from models.training import labelled_points

    level = trained.summary.calibration.level
    model = ChurnClassifier.load(built.model)
    assert model.calibrator.shift == level["shift"]
    unshifted = calibration.Calibrator.from_dict(model.calibrator.to_dict() | {"shift": 0.0})
    data = labelled_points(pd.read_parquet(built.features_table), params.train.kinds)
    days = data["t"].to_numpy("datetime64[D]")
    assert len(level["windows"]) >= 2
    for window in level["windows"]:
        inside = (days >= np.datetime64(window["start"])) & (days < np.datetime64(window["end"]))
        assert inside.sum() == window["points"]
        p = unshifted(model.raw(data[inside]))
        assert window["mean_probability"] == pytest.approx(p.mean(), rel=1e-5)
        assert window["churn"] == pytest.approx(data["label"][inside].mean(), rel=1e-5)
