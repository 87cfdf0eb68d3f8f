"""kill -9 of the commands test_kill.py does not kill (`churn report`, `score` of a week of the
history, `weekly`, `backtest`, `register`, `promote`, `contract`), at every step of each of their
commits; and two runs at once of every stage but ingest, and of `churn weekly`.

The kill comes from the product's own test hook (CHURN_KILL_AT=<step> or <command>:<step>), so
each step is hit every time, not by timing luck. After each kill the outputs are the previous
run or the new one, whole and readable; the next run succeeds and removes what the killed one
left (temp folders, temp files, MLflow runs left RUNNING, which it marks KILLED).

The commands run as forks of one warm interpreter (`Churn`): the same CLI, in a process of its
own that the hook kills, without paying the imports (2-4 s) at each of the ~60 runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import artifacts
from tests.pipeline.helpers import ROOT, write_params

pytestmark = pytest.mark.slow

# the forking runner: one JSON request per line on stdin, one answer per line on stdout
RUNNER = r"""
import importlib, json, os, sys, traceback
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import pipeline.cli as cli
for name in ("pipeline.stages.score", "pipeline.stages.report", "pipeline.stages.backtest",
             "pipeline.stages.register", "pipeline.stages.ingest", "pipeline.stages.observe",
             "pipeline.stages.features", "pipeline.stages.train", "pipeline.stages.evaluate",
             "pipeline.stages.simulate", "mlflow", "mlflow.pyfunc", "mlflow.tracking"):
    importlib.import_module(name)

def child(req):
    code = 1
    try:
        os.chdir(req["cwd"])
        for key, value in req["env"].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            cli.app(req["args"], prog_name="churn")
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
        except BaseException:
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "start":
        pid = os.fork()
        if pid == 0:
            child(req)
        print(json.dumps({"pid": pid}), flush=True)
    else:
        _, status = os.waitpid(req["pid"], 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""

# nothing inherited from the shell or other tests: the workspace's own MLflow store
CLEAN = {artifacts.KILL_AT: None, "MLFLOW_TRACKING_URI": None, "DVC_ROOT": None,
         "DVC_EXP_NAME": None, "DVC_STAGE": None}


class RunnerGone(AssertionError):
    """The runner ended (its exit code: `code`), or its shell script failed."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the runner ended (exit {code})")
        self.code = code


@dataclasses.dataclass
class Done:
    code: int
    out: str
    seconds: float


class Churn:
    """`churn <args>` in `cwd`, each run a fork of one interpreter that imported the CLI and
    its libraries once (started with `prefix`, e.g. in a mount namespace of its own)."""

    def __init__(self, prefix: list[str] | None = None, script: str = "",
                 post: str = "") -> None:
        cmd = [sys.executable, "-c", RUNNER]
        if script or post:  # shell commands before the runner starts and after it ends
            cmd = ["sh", "-c", f'{script}\n"$0" "$@" || exit\n{post}', *cmd]
        self.proc = subprocess.Popen([*(prefix or []), *cmd], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.n = 0

    def _ask(self, req: dict, timeout: float = 600) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        if not self.selector.select(timeout):
            self.proc.kill()
            raise AssertionError(f"no answer in {timeout} s to {req}")
        line = self.proc.stdout.readline()
        if not line:
            raise RunnerGone(self.proc.wait())
        return json.loads(line)

    def start(self, cwd: Path, *args: str, kill_at: str | None = None,
              env: dict | None = None) -> tuple[int, Path, float]:
        self.n += 1
        out = Path(cwd) / f".churn-test-{self.n}.out"
        env = CLEAN | {artifacts.KILL_AT: kill_at} | (env or {})
        pid = self._ask({"op": "start", "cwd": str(cwd), "args": list(args), "env": env,
                         "out": str(out)})["pid"]
        return pid, out, time.monotonic()

    def wait(self, started: tuple[int, Path, float]) -> Done:
        pid, out, t0 = started
        code = self._ask({"op": "wait", "pid": pid})["code"]
        text = out.read_text()
        out.unlink()
        return Done(code, " ".join(text.split()) if "Traceback" not in text else text,
                    time.monotonic() - t0)

    def __call__(self, cwd: Path, *args: str, **kw) -> Done:
        return self.wait(self.start(cwd, *args, **kw))

    def ok(self, cwd: Path, *args: str, **kw) -> Done:
        done = self(cwd, *args, **kw)
        assert done.code == 0, (args, done.out[-3000:])
        return done

    def close(self) -> int:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        code = self.proc.wait(timeout=120)
        self.selector.close()
        self.proc.stdout.close()
        return code


# one runner and one workspace per test session, whichever of test_kill_commands.py and
# test_faults.py asks first (a fixture imported into another module would be built twice)
_SHARED: dict = {}


def shared_runner() -> Churn:
    if "runner" not in _SHARED:
        _SHARED["runner"] = Churn()
    return _SHARED["runner"]


def close_shared_runner() -> None:
    runner = _SHARED.pop("runner", None)
    if runner is not None:
        runner.close()


@pytest.fixture(scope="session")
def churn():
    yield shared_runner()
    close_shared_runner()


@dataclasses.dataclass
class Workspace:
    root: Path
    as_of: dt.date  # the export's
    past: dt.date  # a week of the history whose outcome is known (the backtest judges it)

    def __truediv__(self, other: str) -> Path:
        return self.root / other

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"


@pytest.fixture(scope="session")
def workspace(churn, tmp_path_factory, _template_db) -> Workspace:
    return shared_workspace(churn, tmp_path_factory, _template_db)


def shared_workspace(churn: Churn, tmp_path_factory, template_db: Path) -> Workspace:
    """A small world through every command once, its own MLflow store: the 'previous run'
    each kill must preserve (600 customers over 500 days, as test_kill.py's)."""
    if "workspace" not in _SHARED:
        _SHARED["workspace"] = _build(churn, tmp_path_factory, template_db)
    return _SHARED["workspace"]


def _build(churn: Churn, tmp_path_factory, _template_db: Path) -> Workspace:
    root = tmp_path_factory.mktemp("commands")
    write_params(root, simulate={"customers": 600, "days": 500},
                 evaluate={"resamples": 20, "shap_sample": 200})
    shutil.copy(_template_db, root / "mlflow.db")
    for stage in ("simulate", "ingest", "observe", "features", "train", "evaluate", "report"):
        churn.ok(root, stage)
    churn.ok(root, "score", "--pipeline")
    churn.ok(root, "register")
    as_of = dt.date.fromisoformat(
        json.loads((root / "data" / "interim" / "_manifest.json").read_text())["as_of"])
    past = as_of - dt.timedelta(days=100)
    churn.ok(root, "score", "--as-of", past.isoformat())
    churn.ok(root, "weekly", "data/sim/export", "--no-track")
    churn.ok(root, "backtest")
    churn.ok(root, "contract")
    return Workspace(root, as_of, past)


# --------------------------------------------------------------------------- checks


def _whole(folder: Path, stage: str) -> str:
    """The folder is one whole run of `stage` (every file matches its record): its digest."""
    return artifacts.read(artifacts.Input(folder.name, folder, stage)).digest


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*.tmp"))


def _ino(path: Path) -> int:
    return os.stat(path).st_ino


def _client(ws: Workspace):
    from mlflow import MlflowClient

    return MlflowClient(ws.uri)


def _runs(ws: Workspace) -> dict[str, str]:
    """run id -> status of every run in the workspace's experiment."""
    client = _client(ws)
    exp = client.get_experiment_by_name("churn")
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id])}


def _kill_each(churn, ws: Workspace, args: list[str], prefix: str, steps, folders: dict):
    """Kill `churn <args>` at each step; after each, every output in `folders` (path -> stage)
    is whole, and the one being committed is the previous run until its `exchanged` step.
    Then the next run succeeds and leaves nothing beside the outputs. The runs are
    deterministic: the new outputs equal the previous ones."""
    before = {path: (_whole(path, stage), _ino(path)) for path, stage in folders.items()}
    for step in steps:
        killed = churn(ws.root, *args, kill_at=f"{prefix}:{step}" if prefix else step)
        assert killed.code == -9, (step, killed.out[-3000:])
        for path, stage in folders.items():
            assert _whole(path, stage) == before[path][0], (step, path)
        yield step, killed
    done = churn.ok(ws.root, *args)
    for path, stage in folders.items():
        assert _whole(path, stage) == before[path][0]
        assert _leftovers(path) == [], path
    yield "next", done


def _stage_steps(churn, ws, args, prefix, folder: Path, stage: str):
    """A command that commits one folder: at every step before `exchanged` the folder is the
    previous run (the same inode) and the killed run's temp folder is beside it; at
    `exchanged` it is the new run."""
    ino = _ino(folder)
    for step, _ in _kill_each(churn, ws, args, prefix, artifacts.STEPS, {folder: stage}):
        if step == "next":
            continue
        if step == "exchanged":
            assert _ino(folder) != ino, "the kill at 'exchanged' came before the swap"
        else:
            assert _ino(folder) == ino, f"a kill at {step!r} changed the output"
        assert _leftovers(folder), f"{step}: the killed run left nothing: was it killed there?"
        ino = _ino(folder)


# --------------------------------------------------------------------------- kill -9


def test_kill_report_at_every_commit_step(churn, workspace):
    folder = workspace / "reports/retention/month"
    _stage_steps(churn, workspace, ["report"], "report", folder, "report")


def test_kill_backtest_at_every_commit_step(churn, workspace):
    folder = workspace / "data/weekly/backtest"
    _stage_steps(churn, workspace, ["backtest", "--no-track"], "backtest", folder, "backtest")


def test_kill_score_of_a_week_at_every_step(churn, workspace):
    """`churn score --as-of D` (the champion, logged to MLflow): the week's folder at every
    commit step, then a kill inside its MLflow run (`tracked`): the run is left RUNNING and
    the next scoring marks it KILLED."""
    ws = workspace
    folder = ws / f"data/weekly/scores/{ws.past.isoformat()}"
    args = ["score", "--as-of", ws.past.isoformat()]
    _stage_steps(churn, ws, args, "score", folder, "score")
    runs = _runs(ws)
    killed = churn(ws.root, *args, kill_at="score:tracked")
    assert killed.code == -9, killed.out[-3000:]
    left = {r for r, status in _runs(ws).items() if r not in runs}
    assert len(left) == 1 and _runs(ws)[next(iter(left))] == "RUNNING"
    _whole(folder, "score")
    done = churn.ok(ws.root, *args)
    after = _runs(ws)
    assert after[next(iter(left))] == "KILLED"
    assert "RUNNING" not in after.values()
    assert "MLflow run" in done.out and _leftovers(folder) == []


def test_kill_weekly_at_every_step_of_both_its_commits(churn, workspace):
    """`churn weekly <export>` commits the ingested export, then the week's scores: a kill at
    each step of either leaves each folder whole, the previous run or the new one. Between the
    two commits (a kill at ingest:exchanged .. score:recorded) the new export is in and its
    week is not scored yet: the next run (or `churn score`) scores it."""
    ws = workspace
    interim, week = ws / "data/weekly/interim", ws / f"data/weekly/scores/{ws.as_of}"
    args = ["weekly", "data/sim/export", "--no-track"]
    folders = {interim: "ingest", week: "score"}
    ino = {interim: _ino(interim), week: _ino(week)}
    steps = [f"ingest:{s}" for s in artifacts.STEPS] + [f"score:{s}" for s in artifacts.STEPS]
    for step, _ in _kill_each(churn, ws, args, "", steps, folders):
        if step == "next":
            continue
        stage, _, at = step.partition(":")
        moving = interim if stage == "ingest" else week
        assert (_ino(moving) != ino[moving]) == (at == "exchanged"), step
        assert _leftovers(moving), step
        ino[moving] = _ino(moving)
        if stage == "ingest":
            assert _ino(week) == ino[week], step  # the scoring had not begun
    assert not list((ws / "data/weekly/.scratch").glob("*"))


def _file_steps(churn, ws, args, prefix, path: Path) -> None:
    """A command that writes one file: before `exchanged` the file is the previous one (the
    same inode) with the killed run's temp file beside it; at `exchanged` the new one."""
    before, ino = path.read_bytes(), _ino(path)
    for step in artifacts.FILE_STEPS:
        killed = churn(ws.root, *args, kill_at=f"{prefix}:{step}")
        assert killed.code == -9, (step, killed.out[-3000:])
        assert path.read_bytes() == before, step  # whole, and the same (deterministic)
        assert (_ino(path) != ino) == (step == "exchanged"), step
        if step != "exchanged":
            assert _leftovers(path), step
        ino = _ino(path)
    churn.ok(ws.root, *args)
    assert path.read_bytes() == before and _leftovers(path) == []


def test_kill_contract_at_every_step(churn, workspace):
    _file_steps(churn, workspace, ["contract"], "contract", workspace / "docs/contract.md")


def test_kill_register_at_every_step(churn, workspace):
    """`churn register`: a kill after the version is registered (`logged`), after the champion
    rule ran (`decided`), and at each step of writing data/registered.json: the champion is
    the previous one or the new version, registered.json the previous one or the new one,
    whole; the killed runs are left RUNNING and the next register marks them KILLED."""
    ws = workspace
    client = _client(ws)
    registered = ws / "data/registered.json"
    champion = str(client.get_model_version_by_alias("churn", "champion").version)
    before = json.loads(registered.read_text())
    runs = _runs(ws)
    for step in ("logged", "decided"):
        killed = churn(ws.root, "register", kill_at=f"register:{step}")
        assert killed.code == -9, (step, killed.out[-3000:])
        now = str(client.get_model_version_by_alias("churn", "champion").version)
        versions = {str(v.version) for v in client.search_model_versions("name = 'churn'")}
        assert now in versions and now in (champion, max(versions, key=int)), step
        assert json.loads(registered.read_text()) == before
    left = {r: status for r, status in _runs(ws).items() if r not in runs}
    # the second killed run ended the first one's (its process was gone)
    assert sorted(left.values()) == ["KILLED", "RUNNING"], left
    _file_steps(churn, ws, ["register"], "register", registered)
    after = _runs(ws)
    assert {after[r] for r in left} == {"KILLED"} and "RUNNING" not in after.values()
    # equal AUCs (the same model each time): the champion never moved
    assert str(client.get_model_version_by_alias("churn", "champion").version) == champion


def test_kill_promote_between_the_alias_and_its_tag(churn, workspace):
    """`churn promote V`: a kill after the alias moved, before the version is tagged: the
    champion is V (whole: a registered version); the next promote succeeds and tags it."""
    ws = workspace
    client = _client(ws)
    champion = str(client.get_model_version_by_alias("churn", "champion").version)
    other = next(str(v.version) for v in client.search_model_versions("name = 'churn'")
                 if str(v.version) != champion)
    killed = churn(ws.root, "promote", other, kill_at="promote:aliased")
    assert killed.code == -9, killed.out[-3000:]
    assert str(client.get_model_version_by_alias("churn", "champion").version) == other
    assert "champion_decision" not in client.get_model_version("churn", other).tags or (
        client.get_model_version("churn", other).tags["champion_decision"] != "promoted by hand")
    done = churn.ok(ws.root, "promote", other)
    assert f"version {other} is now champion" in done.out
    assert client.get_model_version("churn", other).tags["champion_decision"] == "promoted by hand"
    churn.ok(ws.root, "promote", champion)  # as it was, for the tests after this one


# --------------------------------------------------------------------------- two at once


def _waiting_for(lock: Path) -> int:
    """How many processes wait for the flock on `lock` (Linux /proc/locks, '->' lines)."""
    inode = f":{os.stat(lock).st_ino} "
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and inode in line)


def _two_at_once(churn, ws: Workspace, args: list[str], lock: Path) -> list:
    """Two runs of `churn <args>` held at `lock` until both wait for it, then let go."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = [churn.start(ws.root, *args) for _ in range(2)]
        deadline = time.monotonic() + 300
        while _waiting_for(lock) < 2:
            assert time.monotonic() < deadline, f"{args}: the two runs never waited for {lock}"
            time.sleep(0.05)
        fcntl.flock(held, fcntl.LOCK_UN)
    done = [churn.wait(s) for s in started]
    for d in done:
        assert d.code == 0, (args, d.out[-3000:])
    return done


# stage -> (its arguments, its output folder)
STAGES = {"simulate": ([], "data/sim"), "observe": ([], "data/observations"),
          "features": ([], "data/features"), "train": ([], "data/models"),
          "evaluate": ([], "reports/evaluation"), "report": ([], "reports/retention/month"),
          "score": (["--pipeline"], "data/score")}


@pytest.mark.parametrize("stage", list(STAGES))
def test_two_runs_of_a_stage_at_once_leave_one_whole_run(churn, workspace, stage):
    """Both wait for the lock beside the output, commit one after the other and exit 0; the
    output is one whole run, nothing is left beside it."""
    flags, out = STAGES[stage]
    folder = workspace / out
    before = _whole(folder, stage)
    _two_at_once(churn, workspace, [stage, *flags], folder.parent / f".{folder.name}.lock")
    assert _whole(folder, stage) == before and _leftovers(folder) == []


def test_two_weekly_jobs_at_once_run_one_after_the_other(churn, workspace):
    """Two `churn weekly` of the same workspace: the second waits for the first (the job lock
    in paths.weekly); both exit 0; the export and its week are whole, the history holds the
    week once."""
    import pandas as pd

    ws = workspace
    interim, week = ws / "data/weekly/interim", ws / f"data/weekly/scores/{ws.as_of}"
    before = (_whole(interim, "ingest"), _whole(week, "score"))
    _two_at_once(churn, ws, ["weekly", "data/sim/export", "--no-track"],
                 ws / "data/weekly/.job.lock")
    assert (_whole(interim, "ingest"), _whole(week, "score")) == before
    assert _leftovers(interim) == _leftovers(week) == []
    scores = pd.read_parquet(week / "scores.parquet")
    assert scores["customer_id"].is_unique


def test_two_registers_at_once(churn, workspace):
    """Two `churn register` at once (both held at data/registered.json's lock after their
    MLflow work, done side by side in one store): both exit 0, each registered a version;
    registered.json is whole; the champion is still a registered version."""
    ws = workspace
    client = _client(ws)
    versions = {str(v.version) for v in client.search_model_versions("name = 'churn'")}
    before = (ws / "data/registered.json").read_text()
    done = _two_at_once(churn, ws, ["register"], ws / "data/.registered.json.lock")
    now = {str(v.version) for v in client.search_model_versions("name = 'churn'")}
    assert len(now - versions) == 2
    assert (ws / "data/registered.json").read_text() == before
    assert _leftovers(ws / "data/registered.json") == []
    assert str(client.get_model_version_by_alias("churn", "champion").version) in now
    assert all("registered as 'challenger'" in d.out for d in done)
