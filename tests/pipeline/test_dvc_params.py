"""dvc.yaml's `params:` against what each stage reads when it runs, both ways.

What a stage reads is observed, not read off the source: every stage's command (dvc.yaml's
`cmd`, run through Typer's runner in dvc.yaml's order on a small simulated world in a temp
folder, with a temp MLflow store) loads params.yaml through `pipeline.cli.load_params`; the test
maps every object of the loaded tree (`Paths`, `LabelConfig`, `features.spark`'s `SparkConfig`,
...) to its dotted params key and wraps `__getattribute__` of those classes, so that reading a
field of one of those objects records the key (`labels.grace_days`). Reads while params.yaml is
loaded and checked are not counted (every stage does that). Granularity is one field of a
config dataclass: a mapping-valued field (`train.lgbm`, `score.bands`) is one key, a list of
configs (`simulate.world.plans`) too. A nested section read as a whole (`features.spark` handed
on) counts as reading each of its keys unless one of them is read through it; `dataclasses.
replace`, `asdict` and `vars` read every field, so copies and dumps count whole.

The rule, per stage (a "key" is one field of the loaded params tree; a declaration covers the
key it names and every key under it, so `labels` covers `labels.grace_days`):

1. read => declared: every key the stage reads is covered by one of its declarations.
   Otherwise a changed value does not rerun the stage and its output goes stale.
2. declared => read: every key a declaration covers is read. A section may be declared whole
   only if the stage reads all of its keys; if it reads some, declare those. Otherwise a changed
   value reruns the stage (and, for register and report, logs to MLflow) for nothing.

Two short tables hold the deliberate exceptions, each with its reason, and are checked too (an
exception that no longer applies fails): UNDECLARED, keys a stage reads that dvc.yaml
deliberately leaves out (it says why there too), and OTHER_PATHS, declared keys the stage reads
only under params values this test does not use. Like any run, this one sees the code paths the
repo's params take (features on DuckDB, not Spark).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import cli
from pipeline.params import Params
from tests.pipeline.helpers import ROOT, write_params

pytestmark = pytest.mark.slow

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

# stage -> {params key read but deliberately not declared: why}
UNDECLARED = {
    "features": {"features.spark": "where Spark runs (master, conf) does not change what it "
                                   "computes; handed to the engine, read only on Spark"},
    "register": {"features.spark": "logged to MLflow with the rest of the features section; "
                                   "where Spark runs changes no number"},
}
# stage -> {params key declared but read only under other values: when it is read}
OTHER_PATHS = {
    "ingest": {"data.max_as_of_gap_days": "when data.as_of is set (null here)"},
}


def _is_config(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


class Recorder:
    """Which params keys are read: id(object) -> (object, its dotted key) for every config
    object of a loaded params tree, and the keys read while `reads` is a set."""

    def __init__(self) -> None:
        self.where: dict[int, tuple[object, str, bool]] = {}  # id -> (object, key, in a list)
        self.fields: dict[type, frozenset[str]] = {}
        self.reads: set[str] | None = None

    def map(self, params: Params) -> None:
        reads, self.reads = self.reads, None  # mapping reads nothing
        try:
            for f in dataclasses.fields(Params):
                self._walk(object.__getattribute__(params, f.name), f.name, False)
        finally:
            self.reads = reads

    def _walk(self, obj, key: str, in_list: bool) -> None:
        self.where[id(obj)] = (obj, key, in_list)  # holding obj keeps its id unique
        names = frozenset(f.name for f in dataclasses.fields(type(obj)))
        self.fields[type(obj)] = names
        for name in names:
            value = object.__getattribute__(obj, name)
            if _is_config(value):
                self._walk(value, f"{key}.{name}", in_list)
            elif isinstance(value, tuple | list):
                for item in value:
                    if _is_config(item):
                        self._walk(item, f"{key}.{name}", True)

    def seen(self, obj, name: str) -> None:
        if self.reads is None:
            return
        entry = self.where.get(id(obj))
        if entry is None or entry[0] is not obj:
            return
        _, key, in_list = entry
        if name == "__dict__":  # vars(), pickling by hand: the whole object
            self.reads.add(key)
        elif name in self.fields[type(obj)]:
            self.reads.add(key if in_list else f"{key}.{name}")

    def patch(self, mp: pytest.MonkeyPatch) -> None:
        for cls in self.fields:
            if getattr(cls.__getattribute__, "_records", False):
                continue
            original = cls.__getattribute__

            def getattribute(obj, name, _original=original):
                value = _original(obj, name)
                self.seen(obj, name)
                return value

            getattribute._records = True
            mp.setattr(cls, "__getattribute__", getattribute)


def keys_of(params: Params) -> tuple[set[str], set[str]]:
    """The params tree's keys (one per field; a field holding a config is a section, not a
    key) and its sections."""
    keys, sections = set(), set()

    def walk(obj, key: str) -> None:
        sections.add(key)
        for f in dataclasses.fields(type(obj)):
            value = object.__getattribute__(obj, f.name)
            if _is_config(value):
                walk(value, f"{key}.{f.name}")
            else:
                keys.add(f"{key}.{f.name}")

    for f in dataclasses.fields(Params):
        walk(object.__getattribute__(params, f.name), f.name)
    return keys, sections


def under(key: str, declaration: str) -> bool:
    return key == declaration or key.startswith(declaration + ".")


def expand(raw: set[str], keys: set[str], sections: set[str]) -> set[str]:
    """Recorded reads as keys: a section read whole is all its keys, unless some of its keys
    were read through it (then it was only the way to them)."""
    out = {r for r in raw if r in keys}
    for r in raw - keys:
        assert r in sections, r
        if not any(under(k, r) for k in out):
            out |= {k for k in keys if under(k, r)}
    return out


@contextlib.contextmanager
def _mlflow_reset():
    """register and report --track set MLflow's tracking URI in this process: unset it after."""
    try:
        yield
    finally:
        import mlflow

        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def run(tmp_path_factory, _template_db):
    """Every DVC stage's command once, in dvc.yaml's order; stage -> the keys it read."""
    root = tmp_path_factory.mktemp("dvc-params")
    # a small world and quick fits: other values than the repo's, the same code paths
    write_params(root, simulate={"customers": 500, "days": 600, "truth_samples": 16},
                 train={"test_days": 90, "calibration_days": 100, "oof_folds": 3},
                 evaluate={"resamples": 20, "shap_sample": 200},
                 score={"expected_draws": 50})
    shutil.copy(_template_db, root / "mlflow.db")
    recorder = Recorder()
    read: dict[str, set[str]] = {}
    tree: list[Params] = []
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp, _mlflow_reset():
        load = cli.load_params

        def load_and_map(path):
            params = load(path)
            recorder.map(params)
            recorder.patch(mp)
            tree.append(params)
            return params

        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_ROOT", str(root))
        mp.delenv("DVC_EXP_NAME", raising=False)
        mp.setattr(cli, "load_params", load_and_map)
        for stage, spec in STAGES.items():
            words = shlex.split(spec["cmd"])
            assert words[0] == "churn", spec["cmd"]
            recorder.reads = set()
            result = runner.invoke(cli.app, words[1:])  # params.yaml of the cwd, as dvc runs it
            raw, recorder.reads = recorder.reads, None
            assert result.exit_code == 0, f"`{spec['cmd']}` failed:\n{result.output}"
            read[stage] = raw
    keys, sections = keys_of(tree[0])
    return {stage: expand(raw, keys, sections) for stage, raw in read.items()}, keys, sections


def _line(stage: str, key: str) -> str:
    return f"dvc.yaml, stages.{stage}.params: `- {key}`"


@pytest.mark.parametrize("stage", list(STAGES))
def test_declared_params_are_what_the_stage_reads(run, stage):
    read_by, keys, sections = run
    read = read_by[stage]
    declared = [str(d) for d in STAGES[stage].get("params", [])]
    undeclared, other_paths = UNDECLARED.get(stage, {}), OTHER_PATHS.get(stage, {})
    cmd = f"`{STAGES[stage]['cmd']}`"
    problems = []

    for d in declared:
        if d not in keys and d not in sections:
            problems.append(f"remove {_line(stage, d)}: params.yaml has no such key or section "
                            "the code reads as one (a key inside a mapping such as train.lgbm "
                            "cannot be declared alone)")
    known = [d for d in declared if d in keys or d in sections]

    # 1. read => declared
    for key in sorted(read):
        if any(under(key, d) for d in known) or any(under(key, u) for u in undeclared):
            continue
        problems.append(f"add {_line(stage, key)}: {cmd} reads it (a change would not rerun "
                        "the stage: a stale output)")

    # 2. declared => read
    for d in known:
        covered = {k for k in keys if under(k, d)}
        unread = {k for k in covered - read if not any(under(k, o) for o in other_paths)}
        if not unread:
            continue
        used = sorted(covered & read)
        if not used:
            problems.append(f"remove {_line(stage, d)}: {cmd} reads none of it (a change "
                            "reruns the stage for nothing)")
        else:
            problems.append(
                f"replace {_line(stage, d)} by the keys {cmd} reads: "
                + ", ".join(f"`- {k}`" for k in used)
                + f" (it never reads {', '.join(sorted(unread))}: a change there reruns the "
                "stage for nothing)")

    # the exceptions still apply
    for key, why in undeclared.items():
        if any(under(d, key) or under(key, d) for d in known):
            problems.append(f"{key} is declared for {stage}: drop it from UNDECLARED in this "
                            f"test ({why}), or remove {_line(stage, key)}")
        elif not any(under(k, key) for k in read):
            problems.append(f"{stage} no longer reads {key}: drop it from UNDECLARED in this test")
    for key, when in other_paths.items():
        if not any(under(key, d) for d in known):
            problems.append(f"add {_line(stage, key)}: {cmd} reads it {when} (OTHER_PATHS in "
                            "this test; drop it there if the code no longer reads it)")
        elif any(under(k, key) for k in read):
            problems.append(f"{stage} reads {key} in this run (OTHER_PATHS says only {when}): "
                            "drop it from OTHER_PATHS in this test")

    assert not problems, f"{stage} reads {sorted(read)}\n" + "\n".join(problems)


def test_the_recorder_sees_reads(run):
    """The recording itself works: a key read only by the stage that owns it is seen there and
    only there."""
    read_by, keys, _ = run
    assert "paths.registered" in keys
    assert [s for s, read in read_by.items() if "paths.registered" in read] == ["register"]
    assert [s for s, read in read_by.items() if "train.lgbm" in read] == ["train", "register"]
