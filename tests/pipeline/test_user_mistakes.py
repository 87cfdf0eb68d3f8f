"""Every user mistake ends in a message that says what to change, exit 2, no traceback; and
nothing the product did not write is ever deleted."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.pipeline.helpers import failing_tracking_server, write_params

runner = CliRunner()


def _fails(args: list[str], *needles: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace with a small world simulated and ingested."""
    monkeypatch.chdir(tmp_path)
    params = str(write_params(tmp_path, simulate={"customers": 150, "days": 300}))
    for stage in ("simulate", "ingest"):
        assert runner.invoke(app, [stage, "--params", params]).exit_code == 0
    return tmp_path, params


def test_simulate_never_deletes_a_folder_it_did_not_write(ws):
    root, params = ws
    _fails(["simulate", "--params", params, "--out", "data"],
           "data exists and was not written by `churn simulate`")
    assert (root / "data" / "interim" / "_manifest.json").exists()
    mine = root / "mine"
    mine.mkdir()
    (mine / "customers.csv").write_text("precious")
    _fails(["simulate", "--params", params, "--out", "mine"], "never replaced")
    assert (mine / "customers.csv").read_text() == "precious"


@pytest.mark.parametrize(("paths", "needle"), [
    ({"raw": "data/sim/mine"}, "paths.raw: data/sim/mine overlaps paths.sim"),
    ({"sim": "data"}, "paths.sim: data holds paths.interim"),
])
def test_outputs_never_overlap_the_export_or_each_other(tmp_path, paths, needle):
    _fails(["simulate", "--params", str(write_params(tmp_path, paths=paths))], needle)


def test_raw_flag_is_checked_like_params(ws):
    _, params = ws
    _fails(["ingest", "--params", params, "--raw", "data/interim"],
           "--raw: paths.raw: data/interim overlaps paths.interim")


@pytest.mark.parametrize(("section", "values", "needle"), [
    ("features", {"window_days": -90}, "features.window_days: must be at least 1 day"),
    ("labels", {"horizon_days": -60}, "labels.horizon_days: must be at least 1 day"),
    ("labels", {"every_days": 0}, "labels.every_days: must be at least 1 day"),
    ("features", {"recent_days": 120}, "features.recent_days: 120 is longer than window_days 90"),
    ("data", {"max_bad_share": -1}, "data.max_bad_share"),
    ("data", {"timezone": "Mars/Olympus"}, "data.timezone"),
    ("data", {"rename": {"usages": {"a": "b"}}}, "data.rename"),
    ("train", {"oof_folds": 0}, "train.oof_folds"),
    ("train", {"lgbm": {"num_leavs": 7}}, "train.lgbm.num_leavs: not a LightGBM parameter; did you "
                                          "mean num_leaves?"),
    ("train", {"lgbm": {"learning_rate": "fast"}}, "train.lgbm.learning_rate"),
    ("features", {"engine": "polars"}, "features.engine: 'polars' is not one of"),
])
def test_params_out_of_range_stop_at_load(tmp_path, section, values, needle):
    params = str(write_params(tmp_path, **{section: values}))
    _fails(["simulate", "--params", params], needle)


def test_flags_are_checked_like_params(tmp_path):
    params = str(write_params(tmp_path))
    _fails(["simulate", "--params", params, "--customers", "-5"],
           "--customers: simulate.customers")
    _fails(["features", "--params", params, "--engine", "polars"], "features.engine")


def test_params_file_mistakes(tmp_path):
    _fails(["simulate", "--params", str(tmp_path)], "is a folder")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    _fails(["simulate", "--params", str(empty)], "the file is empty")


def test_stages_out_of_order_name_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = str(write_params(tmp_path))
    _fails(["observe", "--params", params], "run `churn ingest` first")
    _fails(["train", "--params", params], "data/features not found: run `churn features` first")
    _fails(["evaluate", "--params", params], "run `churn train` first")
    _fails(["register", "--params", params], "run `churn train` first")


def test_an_as_of_outside_the_export_is_an_error(ws):
    _, params = ws
    _fails(["ingest", "--params", params, "--as-of", "2001-01-01"], "as-of")
    _fails(["ingest", "--params", params, "--as-of", "2031-01-01"], "data.max_as_of_gap_days")
    _fails(["ingest", "--params", params, "--as-of", "soon"], "not a date")


def test_stale_inputs_are_refused(ws):
    root, params = ws
    assert runner.invoke(app, ["observe", "--params", params]).exit_code == 0
    as_of = pd.read_json(root / "data" / "interim" / "_manifest.json", typ="series")["as_of"]
    earlier = (pd.Timestamp(as_of) - pd.Timedelta(days=30)).date().isoformat()
    assert runner.invoke(app, ["ingest", "--params", params, "--as-of", earlier]).exit_code == 0
    _fails(["features", "--params", params],
           "made from another run of `churn ingest`", "run `churn observe` again")


def test_truth_only_for_the_simulated_export(ws):
    """Another export ingested by hand never gets the default world's truth attached."""
    root, params = ws
    assert runner.invoke(app, ["observe", "--params", params]).exit_code == 0
    own = pd.read_parquet(root / "data" / "observations" / "observations.parquet")
    assert own["truth"].notna().any()
    assert runner.invoke(app, ["simulate", "--params", params, "--out", "other",
                               "--seed", "9"]).exit_code == 0
    assert runner.invoke(app, ["ingest", "--params", params, "--raw", "other/export"]
                         ).exit_code == 0
    out = runner.invoke(app, ["observe", "--params", params])
    assert out.exit_code == 0, out.output
    other = pd.read_parquet(root / "data" / "observations" / "observations.parquet")
    assert other["truth"].isna().all()


# MLflow's HTTP session keeps its pooled socket to the dead server until collected
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_server_failing_its_api_stops_register_in_bounded_time(params, built, trained,
                                                                 monkeypatch):
    import dataclasses

    from pipeline import tracking
    from pipeline.stages import register

    for key in tracking.HTTP_LIMITS:
        monkeypatch.delenv(key, raising=False)
    with failing_tracking_server() as uri:
        start = time.monotonic()
        with pytest.raises(tracking.TrackingError, match=f"{uri} failed a request.*local store"):
            register.run(dataclasses.replace(params, paths=built), uri, log=lambda m: None)
        assert time.monotonic() - start < 60
