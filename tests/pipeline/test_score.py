"""`churn score` and the weekly job on the 4,000-customer world: the columns and the list, the
control group, the model's contract, the stale as-of, the score history, drift, and the
features the weekly job computes against the ones the model was trained on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.catalogue import FEATURES
from pipeline import artifacts, tables
from pipeline.cli import app
from pipeline.stages import features as features_stage
from pipeline.stages import ingest as ingest_stage
from pipeline.stages import observe as observe_stage
from pipeline.stages import score as stage
from pipeline.stages import train as train_stage
from tests.conftest import build_world
from tests.pipeline.helpers import ROOT, write_params

runner = CliRunner()


@pytest.fixture(scope="module")
def scored(params, built, trained, tmp_path_factory):
    """The pipeline's scoring (DVC stage) and a weekly scoring of the same day, by model file."""
    paths = dataclasses.replace(built, score=str(tmp_path_factory.mktemp("score") / "score"),
                                weekly=str(tmp_path_factory.mktemp("weekly") / "weekly"))
    pipe = stage.run_pipeline(params.score, params.report, paths, "churn")
    week = stage.run_weekly(params.score, params.report, paths, model_uri=str(paths.model),
                            tracking_uri="", experiment="", track=False, log=lambda m: None)
    return paths, pipe, week


def _scores(folder) -> pd.DataFrame:
    return pd.read_parquet(Path(folder) / stage.SCORES)


def test_every_customer_at_risk_is_scored_once_with_columns_ranks_and_bands(params, scored):
    paths, pipe, _ = scored
    s = _scores(paths.score)
    m = tables.manifest(paths)
    assert pipe.scored == pipe.at_risk == len(s) == s["customer_id"].nunique() > 1000
    assert (s["as_of"] == m.as_of).all()
    assert sum(pipe.by_state.values()) == len(s)
    assert set(s["state"]) <= {"renewal_due", "pending", "young", "ongoing"}
    assert s["young"].equals(s["state"] == "young")
    # ranks 1..n by expected net, descending
    assert s["rank"].tolist() == list(range(1, len(s) + 1))
    assert (np.diff(s["expected_net"].to_numpy()) <= 1e-6 * s["expected_net"].abs().max()).all()
    # bands by the params' thresholds
    edges = params.score.bands
    for band, low in edges.items():
        assert (s.loc[s["risk_band"] == band, "churn_probability"] >= low).all()
    assert (s.loc[s["risk_band"] == "low", "churn_probability"] < edges["medium"]).all()
    # E[net] = p gamma V - offer (gamma p + 1 - p) - contact, and value at risk = p V
    c = params.score
    p, v = s["churn_probability"], s["value"]
    want = p * c.gamma * v - c.offer_cost * (c.gamma * p + 1 - p) - c.contact_cost
    np.testing.assert_allclose(s["expected_net"], want, rtol=1e-6, atol=1e-2)
    np.testing.assert_allclose(s["value_at_risk"], p * v, rtol=1e-6)
    assert (s["value"] > 0).all() and set(s["value_basis"]) <= {"cohort", "pooled",
                                                                  "renewal share"}


def test_the_list_is_sized_by_expected_profit_without_the_control_group(params, scored):
    paths, pipe, _ = scored
    s = _scores(paths.score)
    listed = s[s["in_list"]]
    assert len(listed) == pipe.list_size == min(params.score.capacity,
                                                int(((s["expected_net"] > 0) & ~s["holdout"]).sum()))
    assert (listed["expected_net"] > 0).all() and not listed["holdout"].any()
    # the list is the best of the eligible: nobody eligible left out ranks above a listed one
    left_out = s[~s["in_list"] & ~s["holdout"]]
    assert left_out["rank"].min() > listed["rank"].max()
    assert pipe.expected_saved == pytest.approx(listed["expected_net"].sum(), rel=1e-6)
    csv = pd.read_csv(Path(paths.score) / stage.LIST)
    assert csv["customer_id"].tolist() == listed["customer_id"].tolist()
    assert {"churn_probability", "value", "reason_1", "suggested_action"} <= set(csv.columns)


def test_reasons_on_the_list_raise_the_risk_and_name_an_action(scored):
    paths, _, _ = scored
    s = _scores(paths.score)
    listed = s[s["in_list"]]
    # a listed customer without a reason is one valuable enough to list at a low risk, with
    # nothing that raises it above the typical customer's
    unexplained = listed[listed["reason_1"] == ""]
    assert (unexplained["risk_band"] == "low").all() and len(unexplained) < 0.05 * len(listed)
    assert (unexplained["suggested_action"] == "no action").all()
    for i in (1, 2, 3):
        has = listed[listed[f"reason_{i}"] != ""]
        assert (has[f"reason_{i}_contribution"] > 0).all()
        assert (has[f"reason_{i}_direction"] == "raises").all()
    explained = listed[listed["reason_1"] != ""]
    assert (explained["p_if_typical"] <= explained["churn_probability"]).all()
    renewing = listed["state"].isin(["renewal_due", "pending"])
    assert (listed.loc[renewing, "suggested_action"] == "remind to renew").all()
    # below the reasons band and off the list: no reasons computed (they cost ~100x a predict)
    quiet = s[~s["in_list"] & s["risk_band"].isin(["low", "medium"])]
    assert (quiet["reason_1"] == "").all() and (quiet["suggested_action"] == "").all()


def test_the_control_group_is_fixed_by_the_campaign_and_about_its_share(params, scored):
    paths, _, _ = scored
    s = _scores(paths.score)
    share = s["holdout"].mean()
    n = len(s)
    assert abs(share - params.score.holdout_share) < 4 * np.sqrt(0.1 * 0.9 / n)
    other = stage.history(paths)  # the weekly scoring of the same day: the same customers
    other = other[other["as_of"] == tables.manifest(paths).as_of]
    assert other.set_index("customer_id")["holdout"].equals(
        s.set_index("customer_id")["holdout"].reindex(other["customer_id"]))


def test_the_weekly_job_computes_the_features_the_model_was_trained_on(params, scored):
    """Train/serve: the weekly job's own features on the export's as-of date equal the feature
    stage's rows for the same points, so its scores equal the pipeline's."""
    paths, _, week = scored
    a = _scores(paths.score).set_index("customer_id").sort_index()
    b = pd.read_parquet(Path(week.folder) / stage.SCORES).set_index("customer_id").sort_index()
    assert a.index.equals(b.index)
    same = [c for c in a.columns if c not in ("model_name", "model_version")]
    pd.testing.assert_frame_equal(a[same], b[same])


def test_the_pipeline_stage_gives_the_same_bytes_twice_and_names_no_run(params, scored):
    paths, _, _ = scored
    before = artifacts.StageRecord.read(Path(paths.score))
    stage.run_pipeline(params.score, params.report, paths, "churn")
    after = artifacts.StageRecord.read(Path(paths.score))
    assert before.files == after.files
    summary = json.loads((Path(paths.score) / stage.SUMMARY).read_text())
    assert summary["model_run_id"] == "" and summary["model_version"].startswith("file:")


def test_scoring_the_past_and_the_history_replaces_a_week_whole(params, scored, tmp_path):
    paths, _, _ = scored
    m = tables.manifest(paths)
    day = m.as_of - dt.timedelta(days=28)
    kw = dict(model_uri=str(paths.model), tracking_uri="", experiment="", track=False,
              log=lambda m: None)
    first = stage.run_weekly(params.score, params.report, paths, as_of=day, **kw)
    assert first.as_of == day.isoformat() and first.scored == first.at_risk
    # two scorings of the same week at once (two processes, 50 listed each): one whole result,
    # the history holds the week once
    config = _params(tmp_path, paths, weekly=paths.weekly, score={"capacity": 50})
    args = [sys.executable, "-m", "pipeline.cli", "score", "--params", str(config),
            "--model-uri", str(paths.model), "--no-track", "--as-of", day.isoformat()]
    runs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(2)]
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out
    h = stage.history(paths)
    week = h[h["as_of"] == day]
    assert len(week) == first.scored and week["customer_id"].is_unique
    assert int(week["in_list"].sum()) == 50
    record = artifacts.read(artifacts.Input("week", stage.week_folder(paths, day), stage.STAGE))
    assert set(record.files) == {stage.SCORES, stage.LIST, stage.DRIFT, stage.SUMMARY}
    leftovers = list(stage.week_folder(paths, day).parent.glob(".*.tmp"))
    assert not leftovers
    # the control group of a later week: the same customers, where they are scored both times
    later = h[h["as_of"] == m.as_of].set_index("customer_id")["holdout"]
    earlier = week.set_index("customer_id")["holdout"]
    both = later.index.intersection(earlier.index)
    assert len(both) > 1000 and later[both].equals(earlier[both])


def _params(tmp_path: Path, paths, weekly=None, **changes) -> Path:
    return write_params(tmp_path, paths={k: str(getattr(paths, k)) for k in (
        "raw", "sim", "interim", "observations", "features", "models", "evaluation",
        "registered", "score")} | {"weekly": str(weekly or tmp_path / "weekly"),
                                   "report": str(tmp_path / "report")}, **changes)


def test_a_stale_as_of_stops_unless_allowed(scored, tmp_path):
    paths, _, _ = scored
    m = tables.manifest(paths)
    later = (m.as_of + dt.timedelta(days=10)).isoformat()
    args = ["score", "--params", str(_params(tmp_path, paths)), "--model-uri", str(paths.model),
            "--no-track", "--as-of", later]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "after the export's as-of date" in r.output and "--allow-stale" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    r = runner.invoke(app, [*args, "--allow-stale"])
    assert r.exit_code == 0, r.output
    assert "stale" in r.output


def test_a_model_whose_features_differ_stops_naming_the_feature(scored, tmp_path):
    paths, _, _ = scored
    params = _params(tmp_path, paths)

    def variant(change) -> Path:
        folder = tmp_path / f"model-{len(list(tmp_path.glob('model-*')))}"
        folder.mkdir()
        for f in Path(paths.model).iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        contract = json.loads((folder / "contract.json").read_text())
        change(contract)
        (folder / "contract.json").write_text(json.dumps(contract))
        return folder

    def renamed(c):
        c["features"] = ["usage_messages_per_week" if f == "usage_messages_per_day" else f
                         for f in c["features"]]
        c["dtypes"]["usage_messages_per_week"] = "float64"

    def retyped(c):
        c["dtypes"]["tickets_30"] = "int64"

    def recoded(c):
        c["vocab"]["plan_code"] = [v for v in c["vocab"]["plan_code"] if v != "pro"]

    def reordered(c):  # LightGBM takes columns by position: this would change every score
        c["features"] = list(reversed(c["features"]))

    for change, named in ((renamed, "usage_messages_per_week"), (retyped, "tickets_30"),
                          (recoded, "plan_code"), (reordered, "inconsistent")):
        r = runner.invoke(app, ["score", "--params", str(params), "--no-track",
                                "--model-uri", str(variant(change))])
        assert r.exit_code == 2, r.output
        assert named in r.output and "Traceback" not in r.output
        assert not (tmp_path / "weekly" / "scores").exists() or not any(
            (tmp_path / "weekly" / "scores").iterdir())


def test_weekly_job_ingests_a_new_export_beside_the_pipeline_and_scores_it(params, scored,
                                                                           tmp_path):
    """`churn weekly <export>`: ingested into paths.weekly (the pipeline's interim folder is not
    touched), scored with the model, a one-screen summary."""
    paths, _, _ = scored
    before = artifacts.StageRecord.read(Path(paths.interim))
    r = runner.invoke(app, ["weekly", str(paths.raw), "--params", str(_params(tmp_path, paths)),
                            "--model-uri", str(paths.model), "--no-track"])
    assert r.exit_code == 0, r.output
    assert artifacts.StageRecord.read(Path(paths.interim)) == before
    m = tables.manifest(paths)
    folder = tmp_path / "weekly" / "scores" / m.as_of.isoformat()
    assert (folder / stage.SCORES).is_file()
    for words in ("list", "expected saved value", "drift", "control group", "AUC"):
        assert words in r.output


def test_the_champion_from_the_registry_and_an_mlflow_run_per_scoring(params, built, trained,
                                                                      mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from pipeline.stages import register

    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"),
                                registered=str(tmp_path / "registered.json"))
    reg = register.run(dataclasses.replace(params, paths=paths), mlflow_uri, log=lambda m: None)
    s = stage.run_weekly(params.score, params.report, paths, model_uri="models:/churn@champion",
                         tracking_uri=mlflow_uri, experiment="churn", log=lambda m: None)
    assert s.model_version == reg.version and s.model_run_id == reg.run_id
    run = MlflowClient(mlflow_uri).get_run(s.mlflow_run_id)
    assert run.data.tags["model_version"] == reg.version
    assert run.data.metrics["customers_scored"] == s.scored
    assert run.data.metrics["list_size"] == s.list_size
    assert {f"psi.{f}" for f in FEATURES} <= set(run.data.metrics)
    assert "expected.auc" in run.data.metrics
    # a model name the registry does not hold: a message, not a traceback
    with pytest.raises(stage.UserError, match="not in the registry"):
        stage.run_weekly(params.score, params.report, paths, model_uri="models:/nope@champion",
                         tracking_uri=mlflow_uri, experiment="churn", log=lambda m: None)


@pytest.fixture(scope="module")
def frozen(params, built, tmp_path_factory):
    """A model trained on the export as it was 140 days before its as-of date (with its drift
    reference): the weeks after it are new to the model."""
    root = tmp_path_factory.mktemp("frozen")
    day = tables.manifest(built).as_of - dt.timedelta(days=140)
    cut = dataclasses.replace(built, interim=str(root / "interim"),
                              observations=str(root / "observations"),
                              features=str(root / "features"), models=str(root / "models"))
    ingest_stage.cut(built, Path(cut.interim), day, params.labels.grace_days)
    observe_stage.run(params.labels, cut)
    features_stage.run(params.features, params.labels, cut)
    train_stage.run(dataclasses.replace(params.train, hist_gradient_boosting=None),
                    params.labels, cut, log=lambda m: None)
    return day, cut.model


def test_the_profit_sized_list_catches_more_value_than_the_top_k_by_probability(
        params, built, frozen, tmp_path):
    """On the simulator, scored on the day the model was frozen, judged by what happened next
    (the labels of the full export): the list by expected profit holds more realised value at
    risk (the value of those who then churned) than the same number of highest probabilities."""
    from features import observations as obs

    day, model = frozen
    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"))
    s = stage.run_weekly(params.score, params.report, paths, model_uri=str(model),
                         tracking_uri="", experiment="", track=False, as_of=day,
                         log=lambda m: None)
    scores = pd.read_parquet(Path(s.folder) / stage.SCORES)
    data = stage.read_data(built)
    runs = obs.runs(data.customers, data.subs, view=data.manifest.as_of,
                    grace_days=params.labels.grace_days)
    points = scores[["customer_id"]].merge(
        obs.scoring_points(obs.runs(data.customers, data.subs, view=day,
                                    grace_days=params.labels.grace_days), day=day),
        on="customer_id", how="left")
    churned = obs.label(points, runs, as_of=data.manifest.as_of,
                        horizon_days=params.labels.horizon_days,
                        grace_days=params.labels.grace_days)
    assert churned.notna().all()
    scores["realised"] = churned.to_numpy(float) * scores["value"]
    eligible = scores[~scores["holdout"]]
    k = int(eligible["in_list"].sum())
    assert 0 < k <= params.score.capacity
    by_profit = eligible.loc[eligible["in_list"], "realised"].sum()
    by_probability = eligible.nlargest(k, "churn_probability")["realised"].sum()
    assert by_profit > by_probability


def test_drift_is_quiet_on_an_unchanged_world_and_alarms_when_usage_drops(params, built,
                                                                          frozen, tmp_path):
    """A model frozen 140 days before the export; weekly scorings after it. The unchanged world
    raises no alarm in at least 99 % of (feature, week) pairs; the same world with usage down
    30 % from a day on alarms on usage features within two weeks, and on nothing else while
    the shock is fresh."""
    frozen, model = frozen
    kw = dict(model_uri=str(model), tracking_uri="", experiment="", track=False,
              log=lambda m: None)
    unchanged = dataclasses.replace(built, weekly=str(tmp_path / "a"))
    pairs = alarms = 0
    for k in range(0, 13):
        s = stage.run_weekly(params.score, params.report, unchanged,
                             as_of=frozen + dt.timedelta(days=7 * k), **kw)
        pairs += s.features_checked
        alarms += len(s.drift_alarms)
    assert pairs == 13 * len(FEATURES)
    assert alarms <= 0.01 * pairs

    shock = frozen + dt.timedelta(days=28)
    world = dataclasses.replace(params.simulate.world, usage_shock_factor=0.7,
                                usage_shock_day=(shock - params.simulate.start).days)
    shocked = build_world(params, tmp_path / "world", customers=4000, world=world)
    paths = dataclasses.replace(built, raw=str(shocked / "export"), sim=str(shocked),
                                interim=str(tmp_path / "b" / "interim"),
                                weekly=str(tmp_path / "b" / "weekly"))
    ingest_stage.run(params.data, paths, Path(paths.raw))
    seen = {}
    for days in (-7, 0, 7, 14, 21, 28):
        s = stage.run_weekly(params.score, params.report, paths,
                             as_of=shock + dt.timedelta(days=days), **kw)
        seen[days] = [a["feature"] for a in s.drift_alarms]
    assert seen[-7] == seen[0] == []
    assert any(f.startswith("usage_") for f in seen[14])
    fresh = [f for d in (7, 14, 21, 28) for f in seen[d]]
    assert fresh and all(f.startswith("usage_") for f in fresh), seen


def test_mistakes_end_in_a_message_and_exit_2(scored, tmp_path, mlflow_uri):
    paths, _, _ = scored
    params = str(_params(tmp_path, paths))
    empty = tmp_path / "empty"
    empty.mkdir()
    old = tmp_path / "old-model"
    old.mkdir()
    for f in ("booster.txt", "calibrator.json", "contract.json"):  # a model from before drift
        (old / f).write_bytes((Path(paths.model) / f).read_bytes())
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for f in Path(paths.model).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "contract.json").write_text("{not json")
    afile = tmp_path / "a-file"
    afile.write_text("mine")
    (tmp_path / "p2").mkdir()
    weekly_is_a_file = str(_params(tmp_path / "p2", paths, weekly=afile))
    cases = [
        (["score", "--pipeline", "--as-of", "2025-01-01"], "drop --as-of"),
        (["score", "--no-track", "--model-uri", str(broken)], "damaged"),
        (["score", "--no-track", "--model-uri", str(tmp_path / "nowhere")], "not found"),
        (["score", "--no-track", "--model-uri", str(paths.model), "--as-of", "2001-01-01"],
         "nobody had signed up"),
        (["score", "--no-track", "--model-uri", str(paths.model), "--params", weekly_is_a_file],
         "is a file"),
        (["score", "--no-track", "--model-uri", str(empty)], "holds no model"),
        (["score", "--no-track", "--model-uri", str(old)], "reference.json"),
        (["score", "--no-track"], "not in the registry"),  # an empty store: no champion yet
        (["score", "--no-track", "--model-uri", str(paths.model), "--as-of", "2025-13-01"],
         "not a date"),
        (["weekly", str(tmp_path / "nowhere"), "--model-uri", str(paths.model)],
         "not a folder"),
        (["weekly", str(empty), "--model-uri", str(paths.model), "--no-track"], "customers"),
    ]
    for args, words in cases:
        r = runner.invoke(app, args if "--params" in args else [*args, "--params", params])
        assert r.exit_code == 2, (args, r.output)
        assert words in r.output, (args, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), (args, r.exception)
    assert afile.read_text() == "mine"


def test_an_export_swapped_in_while_scoring_stops_the_scoring(params, scored, tmp_path,
                                                             monkeypatch):
    """Another ingest replaces the interim folder while a scoring reads it: the scoring stops,
    nothing is written (it would otherwise mix two exports)."""
    from tests.pipeline.helpers import recommit

    paths, _, _ = scored
    interim = tmp_path / "interim"
    recommit(Path(paths.interim), interim)
    mine = dataclasses.replace(paths, interim=str(interim), weekly=str(tmp_path / "weekly"))
    real = stage.build_features

    def swapped(*args, **kwargs):
        out = real(*args, **kwargs)
        recommit(Path(paths.interim), interim,
                 lambda folder: (folder / "nps.parquet").write_bytes(b"another export"))
        return out

    monkeypatch.setattr(stage, "build_features", swapped)
    with pytest.raises(artifacts.StaleInputError, match="replaced while this scoring read it"):
        stage.run_weekly(params.score, params.report, mine, model_uri=str(paths.model),
                         tracking_uri="", experiment="", track=False, log=lambda m: None)
    assert not (tmp_path / "weekly" / "scores").exists() or not any(
        p for p in (tmp_path / "weekly" / "scores").iterdir() if not p.name.startswith("."))


def test_backtest_judges_the_weeks_whose_outcome_is_known(params, built, trained, tmp_path,
                                                          mlflow_uri):
    """Weeks scored 100 and 93 days before the export are judged against the churn that
    followed (the model's horizon + grace have passed); the export's own week is pending."""
    from mlflow import MlflowClient

    from pipeline.stages import backtest

    m = tables.manifest(built)
    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"))
    kw = dict(model_uri=str(built.model), tracking_uri="", experiment="", track=False,
              log=lambda m: None)
    for days in (100, 93, 0):
        stage.run_weekly(params.score, params.report, paths,
                         as_of=m.as_of - dt.timedelta(days=days), **kw)
    s = backtest.run(params.evaluate, params.score, params.report, paths, tracking_uri=mlflow_uri,
                     experiment="churn", log=lambda m: None)
    assert [w["as_of"] for w in s.judged] == [
        (m.as_of - dt.timedelta(days=d)).isoformat() for d in (100, 93)]
    assert [w["as_of"] for w in s.pending] == [m.as_of.isoformat()]
    for w in s.judged:
        assert w["customers"] > 1000 and w["left_out"] == 0
        assert 0.7 < w["auc"] < 0.95 and 0 < w["churn"] < 0.4
        assert abs(w["mean_probability"] - w["churn"]) < 0.05
    weeks = pd.read_csv(tmp_path / "weekly" / "backtest" / "weeks.csv")
    assert len(weeks) == 2 and {"auc", "empc", "campaign_effect_lo"} <= set(weeks.columns)
    assert (tmp_path / "weekly" / "backtest" / "plots" / "weeks.png").is_file()
    run = MlflowClient(mlflow_uri).get_run(s.mlflow_run_id)
    assert run.info.run_name == "backtest" and "share_auc_inside" in run.data.metrics
    # no history at all: a message, not a traceback
    empty = dataclasses.replace(built, weekly=str(tmp_path / "none"))
    with pytest.raises(stage.UserError, match="score history"):
        backtest.run(params.evaluate, params.score, params.report, empty, track=False, log=lambda m: None)


def test_a_killed_scorings_scratch_folder_is_removed_by_the_next(tmp_path):
    """The points the engine reads sit in <weekly>/.scratch/<host>.<pid>.*: a folder of a
    process that no longer runs is removed; a running one's is kept."""
    import os
    import socket

    base = tmp_path / ".scratch"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    killed = base / f"{host}.{dead}.abc"
    alive = base / f"{host}.{os.getppid()}.def"
    other = base / f"another-host.{dead}.ghi"  # another machine's: not ours to judge
    for folder in (killed, alive, other):
        folder.mkdir(parents=True)
        (folder / "points.parquet").write_bytes(b"x")
    with stage.scratch_folder(tmp_path) as mine:
        assert mine.parent == base and mine.is_dir()
        assert not killed.exists() and alive.exists() and other.exists()
    assert not mine.exists()


def test_weekly_checks_the_model_before_it_ingests(scored, tmp_path):
    """A wrong --model-uri stops `churn weekly` before the new export replaces the weekly
    workspace's last one (the export is good: only the model is wrong)."""
    paths, _, _ = scored
    params = str(_params(tmp_path, paths))
    for model in (tmp_path / "nowhere", tmp_path):  # missing; a folder holding no model
        r = runner.invoke(app, ["weekly", str(paths.raw), "--model-uri", str(model),
                                "--no-track", "--params", params])
        assert r.exit_code == 2, r.output
        assert "not found" in r.output or "holds no model" in r.output, r.output
        assert "ingest" not in r.output, r.output
        # the (empty) workspace folder may be made; nothing is ingested or scored into it
        assert not [f for f in (tmp_path / "weekly").rglob("*")], r.output


def test_a_scoring_leaves_no_scratch_folder(scored):
    """The points pass through <weekly>/.scratch/<host>.<pid>.*; once the scoring is done
    neither that folder nor an empty .scratch is left in the workspace."""
    paths, _, week = scored
    assert Path(week.folder).is_dir()
    assert not (Path(paths.weekly) / ".scratch").exists()
