"""Stage outputs are one whole run: committed in one swap, recorded, checked when read."""

from __future__ import annotations

import json

import pytest

from pipeline import artifacts
from pipeline.artifacts import Input, OutputRefused, StageRecord, StaleInputError


def _write(target, stage, files, inputs=None):
    with artifacts.stage_output(target, stage, inputs) as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
    return StageRecord.read(target)


def test_commit_records_every_file_and_replaces_the_previous_run(tmp_path):
    out = tmp_path / "out"
    first = _write(out, "ingest", {"a.txt": "1", "sub/b.txt": "2"})
    assert first.files == {"a.txt": artifacts.md5(out / "a.txt"),
                           "sub/b.txt": artifacts.md5(out / "sub" / "b.txt")}
    second = _write(out, "ingest", {"a.txt": "3"})
    assert sorted(p.name for p in out.iterdir()) == ["_stage.json", "a.txt"]
    assert second.digest != first.digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")
            and not p.name.endswith(".lock")] == []


def test_same_files_same_record_bytes(tmp_path):
    a = _write(tmp_path / "a", "features", {"x": "same"})
    b = _write(tmp_path / "b", "features", {"x": "same"})
    assert (tmp_path / "a" / "_stage.json").read_bytes() == (tmp_path / "b" / "_stage.json").read_bytes()
    assert a.digest == b.digest


def test_a_failed_run_leaves_the_previous_output(tmp_path):
    out = tmp_path / "out"
    _write(out, "train", {"model": "old"})
    with pytest.raises(RuntimeError), artifacts.stage_output(out, "train") as tmp:
        (tmp / "model").write_text("half")
        raise RuntimeError("boom")
    assert (out / "model").read_text() == "old"
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_folder_it_did_not_write_is_never_replaced(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "customers.csv").write_text("precious")
    with pytest.raises(OutputRefused, match="was not written by `churn simulate`"):
        _write(mine, "simulate", {"x": "y"})
    assert (mine / "customers.csv").read_text() == "precious"
    other = tmp_path / "other"
    _write(other, "ingest", {"x": "y"})
    with pytest.raises(OutputRefused):  # another stage's output is not this stage's to replace
        _write(other, "simulate", {"x": "z"})
    assert (other / "x").read_text() == "y"


def test_leftovers_of_killed_runs_are_removed_and_only_those(tmp_path):
    out = tmp_path / "out"
    _write(out, "observe", {"x": "1"})
    partial = tmp_path / ".out.abc.tmp"
    partial.mkdir()
    (partial / artifacts.PARTIAL).touch()
    (partial / "half").write_text("...")
    swapped_old = tmp_path / ".out.def.tmp"
    swapped_old.mkdir()
    (swapped_old / "_stage.json").write_text(json.dumps({"stage": "observe", "files": {}}))
    foreign = tmp_path / ".out.ghi.tmp"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    removed = artifacts.clean_leftovers(out, "observe")
    assert sorted(p.name for p in removed) == [".out.abc.tmp", ".out.def.tmp"]
    assert foreign.is_dir()


def test_read_checks_each_file_against_its_record(tmp_path):
    out = tmp_path / "features"
    _write(out, "features", {"features.parquet": "table", "feature_meta.json": "{}"})
    inp = Input("features", out, "features")
    assert artifacts.read(inp).stage == "features"
    (out / "feature_meta.json").write_text('{"other": 1}')
    with pytest.raises(StaleInputError, match="feature_meta.json changed after `churn features`"):
        artifacts.read(inp)


def test_missing_or_unrecorded_inputs_name_the_command(tmp_path):
    with pytest.raises(StaleInputError, match="run `churn train` first"):
        artifacts.read(Input("models", tmp_path / "models", "train"))
    (tmp_path / "old").mkdir()
    with pytest.raises(StaleInputError, match="no _stage.json.*run `churn ingest`"):
        artifacts.read(Input("interim", tmp_path / "old", "ingest"))


def test_inputs_from_different_upstream_runs_are_refused(tmp_path):
    interim = _write(tmp_path / "interim", "ingest", {"t": "export 1"})
    _write(tmp_path / "obs", "observe", {"o": "points"}, {"interim": interim})
    read = lambda: artifacts.read_all(Input("interim", tmp_path / "interim", "ingest"),  # noqa: E731
                                      Input("observations", tmp_path / "obs", "observe"))
    assert set(read()) == {"interim", "observations"}
    _write(tmp_path / "interim", "ingest", {"t": "export 2"})  # ingest ran again, observe did not
    with pytest.raises(StaleInputError, match="made from another run of `churn ingest`.*"
                                              "run `churn observe` again"):
        read()


def test_files_added_to_an_output_are_never_lost(tmp_path):
    out = tmp_path / "sim"
    _write(out, "simulate", {"export/a.csv": "1"})
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefused, match="did not write \\(notes.txt\\)"):
        _write(out, "simulate", {"export/a.csv": "2"})
    assert (out / "notes.txt").read_text() == "mine"


def test_a_symlinked_output_is_written_where_it_points(tmp_path):
    disk = tmp_path / "bigdisk" / "features"
    _write(disk, "features", {"x": "1"})
    link = tmp_path / "data" / "features"
    link.parent.mkdir()
    link.symlink_to(disk)
    for text in ("2", "3"):  # twice: the second run must not trip on the first one's leftovers
        _write(link, "features", {"x": text})
        assert link.is_symlink() and (disk / "x").read_text() == text
    assert [p.name for p in disk.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_claim_refuses_before_any_work(tmp_path):
    mine = tmp_path / "models"
    mine.mkdir()
    (mine / "booster.txt").write_text("someone's model")
    with pytest.raises(OutputRefused):
        artifacts.claim(mine, "train")
