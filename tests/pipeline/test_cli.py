"""Every `churn` subcommand, run the way a user runs it (Typer's runner, real files)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import app
from records.contract_doc import render
from tests.pipeline.helpers import ROOT, write_params

runner = CliRunner()


def test_help_lists_the_stages():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in ("simulate", "ingest", "contract"):
        assert stage in result.output


def test_simulate_with_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path)
    result = runner.invoke(app, ["simulate", "--params", str(params), "--customers", "120",
                                 "--seed", "5", "--out", "w", "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w" / "export" / "usage.parquet").exists()
    assert len(pd.read_parquet(tmp_path / "w" / "export" / "customers.parquet")) == 120
    assert "customers 120" in result.output


def test_simulate_skips_when_raw_is_your_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, paths={"raw": "data/raw"})
    result = runner.invoke(app, ["simulate", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "nothing to simulate" in result.output
    assert (tmp_path / "data" / "sim" / "NOT_SIMULATED.txt").exists()
    assert not (tmp_path / "data" / "sim" / "export").exists()


def test_bad_params_fail_cleanly(tmp_path):
    params = write_params(tmp_path, labels={"bogus": 1})
    result = runner.invoke(app, ["simulate", "--params", str(params)])
    assert result.exit_code == 2
    assert "unknown key(s) ['bogus']" in result.output
    assert "Traceback" not in result.output


def test_simulate_then_ingest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, simulate={"customers": 150, "days": 300})
    assert runner.invoke(app, ["simulate", "--params", str(params)]).exit_code == 0
    result = runner.invoke(app, ["ingest", "--params", str(params)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "data" / "interim" / "_manifest.json").read_text())
    world = json.loads((tmp_path / "data" / "sim" / "truth" / "world.json").read_text())
    assert manifest["as_of"] <= world["as_of"]
    customers = pd.read_parquet(tmp_path / "data" / "interim" / "customers.parquet")
    assert len(customers) == 150
    assert (tmp_path / "data" / "interim" / "quarantine" / "usage.parquet").exists()


def test_ingest_missing_file_keeps_old_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, simulate={"customers": 100, "days": 200})
    assert runner.invoke(app, ["simulate", "--params", str(params)]).exit_code == 0
    assert runner.invoke(app, ["ingest", "--params", str(params)]).exit_code == 0
    manifest = (tmp_path / "data" / "interim" / "_manifest.json").read_bytes()
    (tmp_path / "data" / "sim" / "export" / "charges.csv").unlink()
    result = runner.invoke(app, ["ingest", "--params", str(params)])
    assert result.exit_code == 2
    assert "charges" in result.output and "Traceback" not in result.output
    assert (tmp_path / "data" / "interim" / "_manifest.json").read_bytes() == manifest
    leftovers = [p.name for p in (tmp_path / "data").iterdir()
                 if p.name.startswith(".") and not p.name.endswith(".lock")]
    assert leftovers == []


def test_ingest_bad_as_of_flag(tmp_path):
    params = write_params(tmp_path)
    result = runner.invoke(app, ["ingest", "--params", str(params), "--as-of", "2025-02-30"])
    assert result.exit_code == 2
    assert "--as-of '2025-02-30' is not a date" in result.output


def test_contract_page_is_current(tmp_path):
    result = runner.invoke(app, ["contract", "--out", str(tmp_path / "c.md")])
    assert result.exit_code == 0
    assert (tmp_path / "c.md").read_text() == render()
    assert (ROOT / "docs" / "contract.md").read_text() == render(), "run `churn contract`"


def test_openmp_threads_sleep_unless_the_user_chose(tmp_path):
    """The CLI sets OMP_WAIT_POLICY=PASSIVE before LightGBM or scikit-learn load, and leaves a
    user's own choice alone."""
    import os
    import subprocess
    import sys

    probe = ("import sys, os, pipeline.cli; "
             "assert 'lightgbm' not in sys.modules and 'sklearn' not in sys.modules; "
             "print(os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = [sys.executable, "-c", probe]
    assert subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip() == "PASSIVE"
    assert subprocess.run(run, env=env | {"OMP_WAIT_POLICY": "ACTIVE"}, cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip() == "ACTIVE"


def test_prune_without_a_replay_says_what_to_add(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["backtest", "--prune", "--no-track"])
    assert result.exit_code == 2, result.output
    assert "--replay N" in result.output and "Traceback" not in result.output


def test_contract_into_a_folder_that_takes_no_files_says_so(tmp_path, monkeypatch):
    import os
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder.md").mkdir()
    os.mkfifo(tmp_path / "a-pipe.md")
    (tmp_path / "mine.md").write_text("mine")
    (tmp_path / "a-link.md").symlink_to(tmp_path / "mine.md")
    for out in ("/proc/contract.md", "/proc/no-such-folder/contract.md", "a-file/contract.md",
                "a-folder.md", "a-pipe.md", "a-link.md", "", ".", "x" * 300 + ".md"):
        result = runner.invoke(app, ["contract", "--out", out])
        assert result.exit_code == 2, (out, result.output)
        # names the option to change, not a paths.* setting the command does not have
        assert "--out" in result.output and "paths.*" not in result.output, result.output
        assert not isinstance(result.exception, OSError)
    # nothing that was there is replaced: the folder, the pipe, the link and the file behind it
    assert (tmp_path / "a-file").read_text() == "" and not any((tmp_path / "a-folder.md").iterdir())
    assert (tmp_path / "a-pipe.md").is_fifo() and (tmp_path / "a-link.md").is_symlink()
    assert (tmp_path / "mine.md").read_text() == "mine"
