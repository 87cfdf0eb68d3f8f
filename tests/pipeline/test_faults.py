"""The machine failing under the commands other than `churn ingest` (test_bad_input.py covers
ingest): a full disk or a read-only output file system under every stage that writes, and a
tracking server that does not answer or fails its API (HTTP 503 behind a healthy /health)
under `churn weekly`, `score`, `backtest` and `report --track`.

Each ends in a message saying what to do, exit code 2, no traceback; the previous outputs stay
whole and nothing is left beside them. The commands run in test_kill_commands.py's workspace,
as forks of one warm interpreter (a full disk and a read-only one: in a mount namespace of
their own, a small file system mounted over data/ and reports/)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from tests.pipeline.helpers import failing_tracking_server
from tests.pipeline.test_kill_commands import (
    Churn,
    RunnerGone,
    Workspace,
    _ino,
    _leftovers,
    _whole,
    close_shared_runner,
    shared_runner,
    shared_workspace,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def churn():
    yield shared_runner()
    close_shared_runner()


@pytest.fixture(scope="session")
def workspace(churn, tmp_path_factory, _template_db) -> Workspace:
    return shared_workspace(churn, tmp_path_factory, _template_db)

# what each small file system undergoes before the commands run
DISK_FAULTS = {
    "ro": "mount -o remount,ro data && mount -o remount,ro reports || exit 98",
    "full": "for d in data reports; do dd if=/dev/zero of=$d/filler bs=4k 2>/dev/null; done; "
            "true",
}

# output folder -> the stage that writes it ({as_of}: the export's week)
OUTPUTS = {"data/observations": "observe", "data/features": "features", "data/models": "train",
           "reports/evaluation": "evaluate", "reports/retention/month": "report",
           "data/score": "score", "data/weekly/interim": "ingest",
           "data/weekly/scores/{as_of}": "score", "data/weekly/backtest": "backtest"}

COMMANDS = [["observe"], ["features"], ["train"], ["evaluate"], ["report"],
            ["score", "--pipeline"], ["weekly", "data/sim/export", "--no-track"],
            ["backtest", "--no-track"]]


def _outputs(root: Path, ws: Workspace) -> dict[str, str]:
    """Every output folder's digest, after checking it is whole with nothing beside it."""
    out = {}
    for name, stage in OUTPUTS.items():
        folder = root / name.format(as_of=ws.as_of.isoformat())
        out[name] = _whole(folder, stage)
        assert _leftovers(folder) == [], folder
    assert not list((root / "data/weekly/.scratch").glob("*"))
    return out


@pytest.fixture(scope="module")
def small_disks(workspace, tmp_path_factory):
    """Every command of COMMANDS on a copy of the workspace whose data/ and reports/ are small
    file systems holding the previous outputs: once read-only, once full (both at the same
    time). Per fault: each command's result, and data/ and reports/ after all of them."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot mount a small file system here")
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else [
        "unshare", "--user", "--map-root-user", "--mount"]
    base = tmp_path_factory.mktemp("disks")
    runners = {}
    for name, fault in DISK_FAULTS.items():
        ws = base / name
        shutil.copytree(workspace.root, ws, ignore=shutil.ignore_patterns(".churn-test-*"))
        for d in ("data", "reports"):
            (ws / ".orig").mkdir(exist_ok=True)
            (ws / d).rename(ws / ".orig" / d)
            (ws / d).mkdir()
            (ws / "after" / d).mkdir(parents=True)
        mounts = "\n".join(f"mount -t tmpfs -o size=32m churn-test {d} || exit 99\n"
                           f"cp -a .orig/{d}/. {d}/ || exit 97" for d in ("data", "reports"))
        runners[name] = Churn(unshare, script=f"set -u\ncd {ws}\n{mounts}\n{fault}",
                              post="cp -a data/. after/data/; cp -a reports/. after/reports/")
    results = {name: {} for name in runners}
    try:
        for args in COMMANDS:  # the two faults side by side
            started = {name: r.start(base / name, *args) for name, r in runners.items()}
            for name, r in runners.items():
                results[name][args[0]] = r.wait(started[name])
    except RunnerGone as gone:
        for r in runners.values():
            r.close()
        if gone.code in (97, 98, 99):
            pytest.skip(f"cannot mount a small file system here (exit {gone.code})")
        raise
    for r in runners.values():
        assert r.close() == 0
    return base, results


@pytest.mark.parametrize("fault", list(DISK_FAULTS))
def test_a_full_or_read_only_disk_ends_every_command_in_a_message(workspace, small_disks,
                                                                  fault):
    """Each stage computes, then cannot write its output: exit 2, the error of the system
    (“No space left on device”, “Read-only file system”) and what to do, no traceback."""
    base, results = small_disks
    error = {"ro": "Read-only file system", "full": "No space left on device"}[fault]
    for command, done in results[fault].items():
        assert "Traceback" not in done.out, (command, done.out[-3000:])
        assert done.code == 2 and error in done.out, (command, done.out[-3000:])
        assert "Free some space" in done.out or "fix the permissions" in done.out, (
            command, done.out)


@pytest.mark.parametrize("fault", list(DISK_FAULTS))
def test_a_full_or_read_only_disk_leaves_the_previous_outputs(workspace, small_disks, fault):
    """After all of them, every output is the previous run, whole, with nothing beside it."""
    base, _ = small_disks
    assert _outputs(base / fault / "after", workspace) == _outputs(
        base / fault / ".orig", workspace)


# --------------------------------------------------------------------------- tracking server


@pytest.fixture(scope="module")
def failing_server():
    with failing_tracking_server() as uri:
        yield uri


DEAD = "http://127.0.0.1:9"  # nothing listens there


def _stops(done, *needles: str) -> None:
    assert "Traceback" not in done.out, done.out[-3000:]
    assert done.code == 2, done.out[-3000:]
    for needle in needles:
        assert needle in done.out, (needle, done.out[-3000:])


def test_an_unreachable_server_stops_weekly_score_and_backtest_before_any_work(churn,
                                                                                workspace):
    """MLFLOW_TRACKING_URI names a server that does not answer: each stops in seconds, exit 2,
    naming the URI and the local store; nothing is ingested, scored or judged."""
    ws = workspace
    env = {"MLFLOW_TRACKING_URI": DEAD}
    folders = [ws / "data/weekly/interim", ws / f"data/weekly/scores/{ws.as_of}",
               ws / f"data/weekly/scores/{ws.past}", ws / "data/weekly/backtest"]
    before = {f: _ino(f) for f in folders}
    for args in (["weekly", "data/sim/export"], ["score", "--as-of", ws.past.isoformat()],
                 ["score", "--as-of", ws.past.isoformat(), "--model-uri", "data/models/churn"],
                 ["backtest"]):
        done = churn(ws.root, *args, env=env)
        _stops(done, f"{DEAD} did not answer", "local store")
        assert done.seconds < 30, (args, done.seconds)
    assert {f: _ino(f) for f in folders} == before


def test_a_server_failing_its_api_stops_weekly_and_score_in_bounded_time(churn, workspace,
                                                                        failing_server):
    """A server that answers /health and fails every API call (503): fetching the champion
    fails within a minute, exit 2, naming the server (not “not in the registry”); nothing of
    the week is written."""
    ws = workspace
    env = {"MLFLOW_TRACKING_URI": failing_server}
    week = ws / f"data/weekly/scores/{ws.past}"
    before = _ino(week)
    for args in (["weekly", "data/sim/export"], ["score", "--as-of", ws.past.isoformat()]):
        done = churn(ws.root, *args, env=env)
        _stops(done, f"{failing_server} failed a request", "local store")
        assert "not in the registry" not in done.out
        assert done.seconds < 60, (args, done.seconds)
    assert _ino(week) == before


def test_a_server_failing_its_api_after_the_outputs_are_written(churn, workspace,
                                                                failing_server):
    """A scoring with a model folder and `report --track` write their outputs, then fail to
    log them (503): exit 2 within a minute, saying the output is written and not logged; the
    output is the new run, whole, nothing beside it."""
    ws = workspace
    env = {"MLFLOW_TRACKING_URI": failing_server}
    week = (ws.past - dt.timedelta(days=7)).isoformat()  # not a week the champion scored
    cases = {
        ("score", "--as-of", week, "--model-uri", "data/models/churn"):
            (ws / f"data/weekly/scores/{week}", "score"),
        ("report", "--track"): (ws / "reports/retention/month", "report"),
    }
    for args, (folder, stage) in cases.items():
        done = churn(ws.root, *args, env=env)
        _stops(done, f"{failing_server} failed a request", "not logged to MLflow",
               str(folder.relative_to(ws.root)))
        assert done.seconds < 60, args
        _whole(folder, stage)
        assert _leftovers(folder) == []


def _backtest_on(churn, ws: Workspace, server: str):
    folder = ws / "data/weekly/backtest"
    done = churn(ws.root, "backtest", env={"MLFLOW_TRACKING_URI": server})
    _whole(folder, "backtest")
    assert _leftovers(folder) == []
    return done


def test_a_server_failing_its_api_stops_the_backtest_after_writing_it(churn, workspace,
                                                                     failing_server):
    """`churn backtest` writes its folder, then fails to log it (503): exit 2 within a
    minute naming the server and the local store; the folder is the new run, whole."""
    done = _backtest_on(churn, workspace, failing_server)
    _stops(done, f"{failing_server} failed a request", "local store")
    assert done.seconds < 60


def test_the_backtest_says_it_is_written_but_not_logged(churn, workspace, failing_server):
    done = _backtest_on(churn, workspace, failing_server)
    _stops(done, "not logged to MLflow", "data/weekly/backtest")
