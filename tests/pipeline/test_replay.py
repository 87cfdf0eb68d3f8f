"""`churn backtest --replay N` on the 4,000-customer world: honest (an export whose every
event after the week is corrupted gives the same model and the same scores), kept apart from
the live history, reused when replayed again, and judged like the live weeks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import artifacts, tables
from pipeline.stages import backtest
from pipeline.stages import replay as replay_stage
from pipeline.stages import score as score_stage
from records.contract import TABLES


@pytest.fixture(scope="module")
def config(params):
    return replay_stage.ReplayConfig(params.labels, params.features, params.train, params.score,
                                     params.report)


def _corrupt(interim: Path, out: Path, day: dt.date, grace_days: int) -> None:
    """The interim folder with everything an export taken on `day` does not hold changed:
    later sign-ups, periods, events and ticket resolutions, and the outcomes not yet known
    (records/cut.py says which); what was known before `day` is left as it is."""
    d = pd.Timestamp(day)
    rng = np.random.default_rng(7)
    frames = {p.stem: pd.read_parquet(p) for p in interim.glob("*.parquet")}
    c = frames["customers"]
    late = pd.to_datetime(c["signup_date"]) >= d
    c.loc[late, "channel"] = "corrupted"
    s = frames["subscriptions"].sort_values(["customer_id", "period_start"])
    start, end = pd.to_datetime(s["period_start"]), pd.to_datetime(s["period_end"])
    nxt = pd.to_datetime(s.groupby("customer_id")["period_start"].shift(-1))
    known = (((s["outcome"] == "cancelled") & (end < d))
             | ((s["outcome"] == "lapsed") & (end + pd.Timedelta(days=grace_days) < d))
             | ((s["outcome"] == "renewed") & (nxt < d)))
    s.loc[(start < d) & ~known & (end >= d), "outcome"] = "cancelled"  # still unknown at d
    later = start >= d
    s.loc[later, "plan"] = "corrupted"
    s.loc[later, "fee"] = s.loc[later, "fee"] * 100
    frames["subscriptions"] = s.sort_index()
    for name, col in (("usage", "messages"), ("charges", "amount"), ("nps", "score")):
        f = frames[name]
        after = pd.to_datetime(f[TABLES[name].event_ts]) >= d
        if col == "score":
            f.loc[after, col] = rng.integers(0, 11, int(after.sum()))
        else:
            f.loc[after, col] = f.loc[after, col] * 7 + 3
    t = frames["tickets"]
    t.loc[pd.to_datetime(t["opened_at"]) >= d, "topic"] = "billing"
    resolved = pd.to_datetime(t["resolved_at"])
    t.loc[resolved >= d, "resolved_at"] = resolved[resolved >= d] + pd.Timedelta(days=3)
    with artifacts.stage_output(out, "ingest", {}) as tmp:
        for name, frame in frames.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        shutil.copy(interim / "_manifest.json", tmp / "_manifest.json")
        shutil.copytree(interim / "quarantine", tmp / "quarantine")


def test_a_replayed_week_never_sees_an_event_after_it(params, config, built, trained,
                                                       tmp_path):
    m = tables.manifest(built)
    [day] = replay_stage.weeks(m.as_of, 1, params.labels.horizon_days, params.labels.grace_days)
    assert day == m.as_of - dt.timedelta(days=params.labels.horizon_days
                                         + params.labels.grace_days)
    honest = dataclasses.replace(built, weekly=str(tmp_path / "a"))
    [a] = replay_stage.run(1, config, honest, honest, log=lambda m: None)
    _corrupt(Path(built.interim), tmp_path / "corrupt", day, params.labels.grace_days)
    bad = dataclasses.replace(built, interim=str(tmp_path / "corrupt"),
                              weekly=str(tmp_path / "b"))
    # the corruption is real: the full exports differ
    assert not pd.read_parquet(Path(bad.interim) / "usage.parquet").equals(
        pd.read_parquet(Path(built.interim) / "usage.parquet"))
    [b] = replay_stage.run(1, config, bad, bad, log=lambda m: None)
    assert a.as_of == b.as_of == day.isoformat() and not a.reused and not b.reused
    # the same cut, the same model, the same scores
    for sub in ("interim", "models"):
        ra = artifacts.StageRecord.read(Path(a.folder).parents[2] / sub)
        rb = artifacts.StageRecord.read(Path(b.folder).parents[2] / sub)
        assert ra.files == rb.files, sub
    sa, sb = (pd.read_parquet(Path(w.folder) / score_stage.SCORES) for w in (a, b))
    assert len(sa) > 1000
    pd.testing.assert_frame_equal(sa, sb)


def test_replayed_weeks_are_apart_from_the_live_history_and_reused(params, config, built,
                                                                    trained, tmp_path):
    m = tables.manifest(built)
    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"))
    score_stage.run_weekly(params.score, params.report, paths, model_uri=str(built.model),
                           tracking_uri="", experiment="", track=False,
                           as_of=m.as_of - dt.timedelta(days=90), log=lambda m: None)
    logs: list[str] = []
    s = backtest.run(params.evaluate, params.score, params.report, paths, replay=2, replay_config=config,
                     track=False, log=logs.append)
    days = replay_stage.weeks(m.as_of, 2, params.labels.horizon_days, params.labels.grace_days)
    assert [w["as_of"] for w in s.judged] == [d.isoformat() for d in days]
    assert days[1] - days[0] == dt.timedelta(days=7)
    assert s.source == "replay" and not s.pending
    # the replayed AUC against `churn evaluate`'s test-slice AUC (the `trained` fixture ran it)
    [agree] = [n for n in s.notes if "test-slice AUC" in n]
    assert "mean AUC" in agree and ("inside it" in agree or "outside it" in agree)
    assert sum("training" in line for line in logs) == 2  # progress per week
    for w in s.judged:
        assert not w["live"] and np.isnan(w["campaign_effect"])
        assert 0.7 < w["auc"] < 0.95 and w["customers"] > 1000
        # the simulator's truth covers the customers whose point falls on the week's day
        assert 50 < w["truth_customers"] < w["customers"]
        assert abs(w["mean_truth"] - w["churn"]) < 0.06
    # the live history holds only the live week; its backtest never shows a replayed one
    assert [f.name for f in (Path(paths.weekly) / "scores").iterdir()
            if not f.name.startswith(".")] == [
        (m.as_of - dt.timedelta(days=90)).isoformat()]
    live = backtest.run(params.evaluate, params.score, params.report, paths, track=False, log=lambda m: None)
    assert live.source == "live" and [w["as_of"] for w in live.judged] == [
        (m.as_of - dt.timedelta(days=90)).isoformat()]
    folder = replay_stage.root(paths, config)
    assert (folder / "backtest" / backtest.WEEKS).is_file()
    # per signup cohort, the model's expected churners against the sBG's, Kaplan-Meier's and
    # what happened (scoring.cohort_check); the pooled row is in each week's row
    cohorts = pd.read_csv(folder / "backtest" / backtest.COHORTS)
    assert set(cohorts["as_of"]) == {d.isoformat() for d in days}
    for w in s.judged:
        assert w["cohort_churned"] > 100
        assert abs(w["cohort_model_error"]) < 0.25 * w["cohort_churned"]
    # no model of a replay reaches a registry: nothing was tracked; and a second replay of
    # the same weeks from the same export trains nothing
    logs.clear()
    again = backtest.run(params.evaluate, params.score, params.report, paths, replay=2, replay_config=config,
                         track=False, log=logs.append)
    assert sum("reused" in line for line in logs) == 2 and not any("training" in x for x in logs)
    assert pd.DataFrame(again.judged).equals(pd.DataFrame(s.judged))
    # a damaged week is replayed again, not reused
    week = Path(s.judged[0]["as_of"])
    damaged = folder / week / "scored" / "scores" / week / score_stage.SCORES
    with open(damaged, "ab") as f:
        f.write(b"x")
    logs.clear()
    third = backtest.run(params.evaluate, params.score, params.report, paths, replay=2,
                         replay_config=config, track=False, log=logs.append)
    assert sum("training" in line for line in logs) == 1
    assert pd.DataFrame(third.judged).equals(pd.DataFrame(s.judged))
    # other settings, another history
    other = dataclasses.replace(config, score=dataclasses.replace(params.score, capacity=7))
    assert replay_stage.root(paths, other) != folder


def test_replay_mistakes_end_in_a_message(params, config, built, tmp_path):
    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"))
    with pytest.raises(replay_stage.UserError, match="1 or more"):
        replay_stage.run(0, config, paths, paths, log=lambda m: None)
    # weeks before the export's first sign-up: said before any work, however many
    for n in (500, 10**20):
        with pytest.raises(replay_stage.UserError, match="at most .* weeks"):
            replay_stage.run(n, config, paths, paths, log=lambda m: None)
    assert not (Path(paths.weekly) / "replay").exists()
    # a tracking server that does not answer stops the backtest in seconds, before any work
    with pytest.raises(replay_stage.UserError, match="127.0.0.1:1"):
        backtest.run(params.evaluate, params.score, params.report, paths, replay=1,
                     replay_config=config, tracking_uri="http://127.0.0.1:1", experiment="x",
                     log=lambda m: None)
    assert not (Path(paths.weekly) / "replay").exists()
    # --spark-master without the Spark engine would be ignored: refused
    from typer.testing import CliRunner

    from pipeline.cli import app

    r = CliRunner().invoke(app, ["score", "--spark-master", "local[4]", "--no-track"])
    assert r.exit_code == 2 and "--engine spark" in r.output and "Traceback" not in r.output


def test_two_replays_at_once_do_the_work_once(built, trained, tmp_path):
    """Two replays of the same week at once, in two processes: the second waits for the first
    to finish the week, then reuses it (one training, one scoring, the same folder)."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    paths = dataclasses.replace(built, weekly=str(tmp_path / "weekly"))
    code = (
        "import dataclasses, json, sys, time\n"
        "from pipeline.params import load_params\n"
        "from pipeline.stages import replay as r\n"
        f"p = load_params({str(ROOT / 'params.yaml')!r})\n"
        "paths = dataclasses.replace(p.paths, **json.loads(sys.argv[1]))\n"
        "cfg = r.ReplayConfig(p.labels, p.features, p.train, p.score, p.report)\n"
        "log = lambda m: print('AT', time.monotonic(), m, flush=True)\n"
        "for w in r.run(1, cfg, paths, paths, log=log): print('FOLDER', w.folder)\n"
        "print('AT', time.monotonic(), 'done', flush=True)\n")
    arg = json.dumps({k: str(v) for k, v in dataclasses.asdict(paths).items()})
    runs = [subprocess.Popen([sys.executable, "-c", code, arg], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [e[-2000:] for _, e in outs]
    reused = sorted("reused" in out for out, _ in outs)
    assert reused == [False, True], outs
    folders = {line for out, _ in outs for line in out.splitlines() if line.startswith("FOLDER")}
    assert len(folders) == 1, folders

    def at(out: str, what: str) -> float:  # the system-wide monotonic clock of a log line
        return min(float(line.split()[1]) for line in out.splitlines()
                   if line.startswith("AT") and what in line)

    # they really ran at once: the one that reused had started before the other was done
    trainer, waiter = sorted((out for out, _ in outs), key=lambda o: "reused" in o)
    assert at(waiter, "replaying") < at(trainer, "done"), outs


def test_prune_removes_only_other_settings_replays_it_wrote(params, config, tmp_path):
    """Each change of settings replays into a new folder; `--prune` removes the others, but
    never one holding a file a replay does not write (every file is in its stage's record, an
    empty lock, or a killed run's leftover), nor one a replay is using, nor through a link."""
    paths = dataclasses.replace(params.paths, weekly=str(tmp_path / "weekly"))
    mine = replay_stage.root(paths, config)
    base = mine.parent

    def replay_folder(key: str) -> Path:
        folder = base / key
        models = folder / "2024-03-04" / "models"
        models.mkdir(parents=True)
        (models / "booster.txt").write_text("x" * 1000)
        (models / "churn").mkdir()
        (models / "churn" / "contract.json").write_text("{}")
        record = artifacts.StageRecord("train", {"booster.txt": "0", "churn/contract.json": "0"})
        (models / artifacts.RECORD).write_text(record.to_json())
        (folder / "2024-03-04" / ".models.lock").touch()
        (folder / ".2024-03-04.lock").touch()
        (folder / "backtest").mkdir()
        (folder / ".backtest.abcd1234.tmp").mkdir()  # a killed run's leftover
        (folder / ".backtest.abcd1234.tmp" / artifacts.PARTIAL).touch()
        (folder / ".backtest.abcd1234.tmp" / "weeks.csv").write_text("partial")
        return folder

    (mine / "2024-03-04").mkdir(parents=True)
    old = replay_folder("0123456789ab")
    strange = replay_folder("aaaaaaaaaaaa")
    (strange / "my-notes.txt").write_text("the analyst's")
    deep = replay_folder("dddddddddddd")
    (deep / "2024-03-04" / "models" / "notes.txt").write_text("not in the record")
    linked = replay_folder("eeeeeeeeeeee")
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "precious.txt").write_text("precious")
    (linked / "2024-03-11").symlink_to(outside, target_is_directory=True)
    trapped = replay_folder("ffffffffffff")
    (base / ".ffffffffffff.lock").symlink_to(outside / "precious.txt")
    busy = replay_folder("bbbbbbbbbbbb")
    damaged = replay_folder("111111111111")
    (damaged / "2024-03-04" / "models" / artifacts.RECORD).write_text('{"stage": "train", "fi')
    scratch = replay_folder("222222222222")  # a killed scoring's points: product-written
    (scratch / "2024-03-04" / "scored" / ".scratch" / "host.123.ab" / "x").mkdir(parents=True)
    (scratch / "2024-03-04" / "scored" / ".scratch" / "host.123.ab" / "x" / "p.parquet").touch()
    mixed = replay_folder("333333333333")  # a user file beside them is not
    (mixed / "2024-03-04" / "scored" / ".scratch").mkdir(parents=True)
    (mixed / "2024-03-04" / "scored" / ".scratch" / "mine.csv").touch()
    partial = replay_folder("444444444444")  # a temp folder without the marker or a record
    (partial / ".backtest.abcd1234.tmp" / artifacts.PARTIAL).unlink()
    emptied = replay_folder("555555555555")  # the user's empty folder and empty .lock file
    (emptied / "my-empty-folder").mkdir()
    (emptied / "2024-03-04" / ".mynote.lock").touch()
    inside = replay_folder("666666666666")  # the user's empty folder inside a stage's folder
    (inside / "2024-03-04" / "models" / "my-empty").mkdir()
    (base / "not-a-replay").mkdir()
    (base / "cccccccccccc").symlink_to(outside, target_is_directory=True)  # not a folder of ours
    listed = {f.name: size for f, size in replay_stage.older(paths, config)}
    assert set(listed) == {"0123456789ab", "aaaaaaaaaaaa", "bbbbbbbbbbbb", "dddddddddddd",
                           "eeeeeeeeeeee", "ffffffffffff", "111111111111", "222222222222",
                           "333333333333", "444444444444", "555555555555",
                           "666666666666"}
    assert listed["0123456789ab"] == 1000 + 2 + len(record_text(old)) + len("partial")
    busy_config = dataclasses.replace(config, score=dataclasses.replace(params.score,
                                                                        capacity=7))
    busy_root = replay_stage.root(paths, busy_config)
    busy.rename(busy_root)  # a folder under settings a running replay holds
    with replay_stage.in_use(paths, busy_config):
        removed, kept = replay_stage.prune(paths, config)
    assert [f.name for f, _ in removed] == ["0123456789ab", "222222222222"]
    assert not old.exists() and not scratch.exists()
    assert any("models/_stage.json" in k for k in kept) and damaged.is_dir()
    assert any(".scratch/mine.csv" in k for k in kept) and mixed.is_dir()
    assert any(".backtest.abcd1234.tmp" in k for k in kept) and partial.is_dir()
    assert (base / ".0123456789ab.lock").is_file()  # stays: a replay may be waiting on it
    assert any("my-notes.txt" in k for k in kept) and (strange / "my-notes.txt").is_file()
    assert any("models/notes.txt" in k for k in kept) and deep.is_dir()
    assert any("2024-03-11" in k for k in kept) and linked.is_dir()
    assert any("lock file cannot be opened" in k for k in kept) and trapped.is_dir()
    assert (outside / "precious.txt").read_text() == "precious" and (outside / "keep").is_dir()
    assert any("is using it" in k for k in kept) and busy_root.is_dir()
    assert (mine / "2024-03-04").is_dir() and (base / "not-a-replay").is_dir()
    assert (base / "cccccccccccc").is_symlink()
    assert any("my-empty-folder" in k and ".mynote.lock" in k for k in kept)
    assert (emptied / "my-empty-folder").is_dir() and (emptied / "2024-03-04" / ".mynote.lock").is_file()
    assert any("models/my-empty" in k for k in kept)
    assert (inside / "2024-03-04" / "models" / "my-empty").is_dir()
    # released, the busy one goes too
    removed, _ = replay_stage.prune(paths, config)
    assert [f for f, _ in removed] == [busy_root]


def record_text(folder: Path) -> str:
    return (folder / "2024-03-04" / "models" / artifacts.RECORD).read_text()


def test_the_summary_prints_paths_that_look_like_markup():
    """A folder or note holding `[/x]` is text to Rich, not a closing tag."""
    from rich.console import Console

    s = backtest.BacktestSummary(source="replay", export="e", export_as_of="2024-01-01",
                                 judged=[], pending=[], folder="data/w[/x]/replay/backtest",
                                 notes=["1 replay(s) under other settings in data/w[/x]/replay"])
    console = Console(record=True, width=200)
    backtest.render(s, console)
    text = console.export_text()
    assert "data/w[/x]/replay/backtest/" in text and "settings in data/w[/x]/replay" in text


def test_a_replay_made_by_other_code_is_another_replay(config, tmp_path, monkeypatch):
    """The replay folder's key covers the product's code: a week made by older code (another
    calibrator, other bands) is never reused as this code's, and the same code gives the same
    key in another process."""
    import subprocess
    import sys

    package = tmp_path / "src" / "churn_probe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "bands.py").write_text("WIDTH = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(replay_stage, "PACKAGES", (*replay_stage.PACKAGES, "churn_probe"))
    replay_stage.code_digest.cache_clear()
    before = config.key()
    (package / "bands.py").write_text("WIDTH = 2\n")
    replay_stage.code_digest.cache_clear()
    after = config.key()
    (package / "bands.py").write_text("WIDTH = 1\n")
    replay_stage.code_digest.cache_clear()
    assert before != after and config.key() == before
    monkeypatch.undo()
    replay_stage.code_digest.cache_clear()
    here = replay_stage.code_digest()
    there = subprocess.run([sys.executable, "-c", "from pipeline.stages import replay; "
                            "print(replay.code_digest())"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert here == there and len(here) == 64


def test_a_prune_killed_at_any_step_is_finished_by_the_next(params, config, tmp_path,
                                                           monkeypatch):
    """Removal takes the files first, the records and markers last, then the folders: stopped
    after any step, what is left is still known as a replay's (nothing a record does not list),
    so the next prune removes it instead of keeping it for ever."""
    paths = dataclasses.replace(params.paths, weekly=str(tmp_path / "weekly"))
    base = replay_stage.root(paths, config).parent

    def build() -> Path:
        folder = base / "0123456789ab"
        for week in ("2024-03-04", "2024-03-11"):
            for stage, names in (("models", ["booster.txt", "churn/contract.json"]),
                                 ("features", ["features.parquet"])):
                here = folder / week / stage
                for name in names:
                    (here / name).parent.mkdir(parents=True, exist_ok=True)
                    (here / name).write_text("x")
                (here / artifacts.RECORD).write_text(
                    artifacts.StageRecord(stage, {n: "0" for n in names}).to_json())
                (folder / week / f".{stage}.lock").touch()
            (folder / f".{week}.lock").touch()
        (folder / ".backtest.abcd1234.tmp").mkdir()
        (folder / ".backtest.abcd1234.tmp" / artifacts.PARTIAL).touch()
        (folder / ".backtest.abcd1234.tmp" / "weeks.csv").write_text("partial")
        return folder

    steps = 0
    real_unlink, real_rmdir = Path.unlink, Path.rmdir

    class Killed(Exception):
        pass

    def counting(real):
        def step(self, *args, **kwargs):
            nonlocal steps
            if steps == 0:
                raise Killed
            steps -= 1
            return real(self, *args, **kwargs)
        return step

    k = 0
    while True:
        folder = build()
        assert replay_stage.not_written(folder) == []
        steps = k
        monkeypatch.setattr(Path, "unlink", counting(real_unlink))
        monkeypatch.setattr(Path, "rmdir", counting(real_rmdir))
        try:
            replay_stage._remove(folder)
            finished = True
        except Killed:
            finished = False
        monkeypatch.undo()
        if finished:
            break
        assert replay_stage.not_written(folder) == [], k  # still a replay's, after step k
        removed, kept = replay_stage.prune(paths, config)
        assert [f.name for f, _ in removed] == ["0123456789ab"] and not kept, (k, kept)
        assert not folder.exists()
        k += 1
    assert k > 20  # every file, record, marker and folder was a step
