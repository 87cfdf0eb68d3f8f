"""`churn backtest --replay N`: an honest score history for a new deployment.

For each of the last N weeks whose outcome the newest export already shows, the export is cut at
that week (records.cut: nothing after it is seen), the points, features and production model
are made from the cut alone exactly as `dvc repro` makes them from a whole export, and the model
scores the cut on its own as-of date. No week is scored by a model that saw its outcome.

Layout, apart from the live history: `<paths.weekly>/replay/<key>/<week>/` holds the week's cut
(interim/), observations/, features/, models/ and its scoring (scored/scores/<week>/); `<key>`
names the settings that make the model and its list (labels, windows, train, score, report) and
the product's code and library versions that make them, so replays under other settings or by
another version never mix: a week made by older code (another calibrator, other bands) is never
passed off as this code's. A week already replayed from the same export with the same settings
and code is reused. The models never reach the registry.

Every change of settings starts a new `<key>` folder, and a replay holds a cut, points, features
and a model per week; `older` lists the other settings' folders with their size and `prune`
removes them (`churn backtest --replay N --prune`): only folders that hold nothing but what a
replay writes, and none a replay is using (each replay holds its key's lock while it runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from common.errors import UserError
from features.config import FeatureConfig, LabelConfig
from models.config import TrainConfig
from pipeline import artifacts, tables
from pipeline.params import Paths, json_ready
from pipeline.stages import features as features_stage
from pipeline.stages import ingest as ingest_stage
from pipeline.stages import observe as observe_stage
from pipeline.stages import score as score_stage
from pipeline.stages import train as train_stage
from retention.config import ReportConfig
from scoring.config import ScoreConfig

WEEK_DAYS = 7


@dataclass(frozen=True)
class ReplayConfig:
    """What makes a replayed week's model and list: the pipeline's own settings."""

    labels: LabelConfig
    features: FeatureConfig
    train: TrainConfig
    score: ScoreConfig
    report: ReportConfig

    def key(self) -> str:
        """12 hex digits naming these settings and the code (the engine is left out: same
        values)."""
        parts = {"labels": self.labels, "features": {"window_days": self.features.window_days,
                                                     "recent_days": self.features.recent_days},
                 "train": self.train, "score": self.score, "report": self.report,
                 "code": code_digest()}
        text = json.dumps(json_ready({k: dataclasses.asdict(v) if dataclasses.is_dataclass(v)
                                      else v for k, v in parts.items()}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# the packages whose code makes a replayed week (the cut, points, features, model, scoring)
PACKAGES = ("common", "records", "features", "models", "scoring", "retention", "pipeline")
# the libraries whose versions can change its numbers
LIBRARIES = ("lightgbm", "numpy", "pandas", "scipy", "scikit-learn", "duckdb", "pyarrow",
             "ibis-framework")


@functools.cache
def code_digest() -> str:
    """The product's source files (path and bytes, in path order) and the versions of the
    libraries that make its numbers, as one sha256: the same on every machine for the same code
    and libraries, another after any change or upgrade."""
    digest = hashlib.sha256()
    for library in LIBRARIES:
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{library}=={version}\0".encode())
    for name in PACKAGES:
        folder = Path(importlib.import_module(name).__file__).parent
        for path in sorted(folder.rglob("*.py"), key=lambda p: p.relative_to(folder).as_posix()):
            digest.update(f"{name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class ReplayedWeek:
    as_of: str
    folder: str  # the week's scoring (a score-history folder)
    reused: bool  # replayed before from the same export with the same settings


def weeks(now: dt.date, n: int, horizon_days: int, grace_days: int) -> list[dt.date]:
    """The last `n` weekly days whose outcome an export of `now` shows (oldest first): the
    latest is `now - horizon - grace`, the others 7, 14, ... days before it."""
    if n < 1:
        raise UserError(f"--replay {n}: give the number of weeks to replay, 1 or more")
    last = now - dt.timedelta(days=horizon_days + grace_days)
    return [last - dt.timedelta(days=WEEK_DAYS * k) for k in reversed(range(n))]


def root(paths: Paths, config: ReplayConfig) -> Path:
    return Path(paths.weekly) / "replay" / config.key()


KEY = re.compile(r"[0-9a-f]{12}")
LOCK = re.compile(r"\.(.+)\.lock")  # artifacts.lock's file beside what it guards
LEFTOVER = re.compile(r"\..+\..+\.tmp")  # artifacts' temp folder of a killed run
SCRATCH = ".scratch"  # the scoring's points for the engine (pipeline/stages/score.py)
SCRATCH_DIR = re.compile(r".+\.\d+\..+")  # <host>.<pid>.<random>: score.scratch_folder
# the folders a replay makes outside its stage folders, and what its lock files guard
WEEK_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")
MADE = {"interim", "observations", "features", "models", "scored", "scores", "backtest"}


@contextlib.contextmanager
def in_use(paths: Paths, config: ReplayConfig) -> Iterator[None]:
    """Held (shared) while a replay and its backtest run: `prune` leaves such a folder alone."""
    base = root(paths, config)
    base.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.lock(base, shared=True):
        yield


def _size(folder: Path) -> int:
    """Bytes of the files under `folder`, links not followed (as rmtree removes them); a file
    another prune removes meanwhile counts 0."""
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(top, name)).st_size
    return total


def not_written(folder: Path) -> list[str]:
    """What under a replay's folder a replay did not write: every file must be listed in the
    stage record (`_stage.json`) of the stage folder holding it, or be an empty lock file;
    a killed run's temp folder must carry artifacts' partial marker or a record, and the
    scoring's scratch folder only its per-process folders; no links."""
    strange = []

    def rel(path: Path) -> str:
        return path.relative_to(folder).as_posix()

    for top, dirs, files in os.walk(folder):
        here = Path(top)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                strange.append(rel(here / name))
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        if here.name == SCRATCH:
            strange += [rel(here / n) for n in sorted(files)]
            strange += [rel(here / d) for d in dirs if not SCRATCH_DIR.fullmatch(d)]
            dirs[:] = []
            continue
        if LEFTOVER.fullmatch(here.name) and (here / artifacts.PARTIAL).is_file():
            dirs[:] = []  # a run killed before its commit: whatever it had written
            continue
        try:
            record = artifacts.StageRecord.read(here)
        except (ValueError, KeyError, TypeError):  # a damaged record proves nothing
            strange.append(rel(here / artifacts.RECORD))
            dirs[:] = []
            continue
        if record is not None:  # a stage's output: its files and their folders, nothing else
            listed = set(record.files) | {artifacts.RECORD}
            folders = {p.as_posix() for f in listed for p in PurePosixPath(f).parents}
            for sub, subdirs, names in os.walk(here):
                for name in names:
                    path = Path(sub) / name
                    if path.relative_to(here).as_posix() not in listed or path.is_symlink():
                        strange.append(rel(path))
                for name in subdirs:  # the ingest's quarantine/ may be empty
                    path = Path(sub) / name
                    if path.relative_to(here).as_posix() not in folders and name != "quarantine":
                        strange.append(rel(path))
            dirs[:] = []
            continue
        if LEFTOVER.fullmatch(here.name):
            if any(names for _, _, names in os.walk(here)):
                strange.append(rel(here))  # a temp folder without a marker or a record
            dirs[:] = []  # (an empty one: a prune's removal stopped part way)
            continue
        for name in sorted(dirs):  # a folder a replay does not make, even empty
            if not (WEEK_DIR.fullmatch(name) or name in MADE or name == SCRATCH
                    or LEFTOVER.fullmatch(name)):
                strange.append(rel(here / name))
        dirs[:] = [d for d in dirs if rel(here / d) not in strange]
        for name in sorted(files):
            path = here / name
            guarded = LOCK.fullmatch(name)
            if not (guarded and (WEEK_DIR.fullmatch(guarded[1]) or guarded[1] in MADE)
                    and not path.is_symlink() and path.stat().st_size == 0):
                strange.append(rel(path))
    return strange


def _remove(folder: Path) -> None:
    """Remove a replay's folder: its files first, then the folders left empty, then the stage
    records and temp markers, then the rest, deepest first. Stopped after any step, what is
    left holds only files some remaining record lists (or markers), and folders a replay makes
    or a record covers, so the next prune still knows the folder as a replay's."""
    last = []
    for top, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = Path(top) / name
            if name in (artifacts.RECORD, artifacts.PARTIAL):
                last.append(path)
            else:
                path.unlink()
    for top, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            if not any((Path(top) / name).iterdir()):
                (Path(top) / name).rmdir()
    for path in last:
        path.unlink()
    for top, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            (Path(top) / name).rmdir()
    folder.rmdir()


def older(paths: Paths, config: ReplayConfig) -> list[tuple[Path, int]]:
    """The replays under other settings than `config`'s, with their size in bytes."""
    base = root(paths, config)
    if not base.parent.is_dir():
        return []
    return [(p, _size(p)) for p in sorted(base.parent.iterdir())
            if p.is_dir() and not p.is_symlink() and KEY.fullmatch(p.name)
            and p.name != base.name]


def prune(paths: Paths, config: ReplayConfig) -> tuple[list[tuple[Path, int]], list[str]]:
    """Remove the other settings' replays; returns what was removed (with sizes) and why any
    was kept. Each is removed under its lock (exclusive), so never while a replay uses it;
    the lock file stays (a process may be waiting on it)."""
    removed, kept = [], []
    for folder, size in older(paths, config):
        try:
            with artifacts.lock(folder, wait=False):
                if not folder.is_dir():
                    continue  # another prune removed it meanwhile
                strange = not_written(folder)
                if strange:
                    kept.append(f"{folder}: kept, it holds what a replay does not write "
                                f"({', '.join(strange[:3])}{', ...' if len(strange) > 3 else ''})")
                    continue
                try:
                    _remove(folder)
                except OSError as err:
                    kept.append(f"{folder}: only partly removed ({err.strerror}: "
                                f"{err.filename}); remove the rest by hand")
                    continue
                removed.append((folder, size))
        except BlockingIOError:
            kept.append(f"{folder}: kept, a replay is using it")
        except OSError as err:
            kept.append(f"{folder}: kept, its lock file cannot be opened ({err.strerror})")
    return removed, kept


def week_paths(source: Paths, folder: Path) -> Paths:
    """The stage folders of one replayed week: the pipeline's stages, pointed at the cut."""
    return dataclasses.replace(
        source, interim=str(folder / "interim"), observations=str(folder / "observations"),
        features=str(folder / "features"), models=str(folder / "models"),
        weekly=str(folder / "scored"))


def _done(wp: Paths, day: dt.date, uncut: artifacts.StageRecord) -> Path | None:
    """The week's scoring, if it was made from a cut of this very export and every file of it
    is as written (a damaged week is replayed again)."""
    scored = score_stage.week_folder(wp, day)
    try:  # each folder whole, every file as written
        record = artifacts.read(artifacts.Input("scores", scored, score_stage.STAGE))
        artifacts.read(artifacts.Input("models", Path(wp.models), train_stage.STAGE))
    except UserError:
        return None
    cut = artifacts.StageRecord.read(Path(wp.interim))
    if cut is None or cut.inputs.get("uncut") != uncut.digest:
        return None
    if record.inputs.get("interim") != cut.digest:
        return None
    if record.inputs.get("model") != score_stage.model_digest(wp.model):
        return None
    return scored


def run(n: int, config: ReplayConfig, source: Paths, paths: Paths, *,
        log: Callable[[str], None] = print) -> list[ReplayedWeek]:
    """Replay the last `n` weeks of the export in `source.interim`; returns their scorings."""
    uncut = artifacts.read_all(*tables.inputs(source, "interim"))["interim"]
    now = tables.manifest(source).as_of
    labels = config.labels
    [last] = weeks(now, 1, labels.horizon_days, labels.grace_days)
    first = score_stage.read_data(source).customers["signup_date"].min()
    room = 0 if pd.isna(first) else max(0, (last - pd.Timestamp(first).date()).days // WEEK_DAYS)
    if n > room:  # checked before any date is built: a huge N would overflow the calendar
        raise UserError(f"--replay {n}: the export of {now} begins on "
                        f"{'-' if pd.isna(first) else pd.Timestamp(first).date()}, so at most "
                        f"{room} weeks can be replayed (and fewer can train a model)")
    days = weeks(now, n, labels.horizon_days, labels.grace_days)
    base = root(paths, config)
    score_stage.check_workspace(paths)
    log(f"replaying {n} week(s), {days[0]} to {days[-1]}, from the export of {now}; "
        f"settings {config.key()} ({base})")
    out = []
    base.mkdir(parents=True, exist_ok=True)
    for i, day in enumerate(days, 1):
        # one replay of a week at a time: a second `churn backtest --replay` waits for the
        # first to finish the week, then reuses it
        with artifacts.lock(base / day.isoformat()):
            out.append(_week(i, n, day, config, source, base, uncut, log))
    return out


def _week(i: int, n: int, day: dt.date, config: ReplayConfig, source: Paths, base: Path,
          uncut: artifacts.StageRecord, log: Callable[[str], None]) -> ReplayedWeek:
    """One week: reused if replayed before from this export, else cut, trained and scored."""
    labels = config.labels
    wp = week_paths(source, base / day.isoformat())
    done = _done(wp, day, uncut)
    if done is not None:
        log(f"week {i}/{n} {day}: replayed before from this export, reused")
        return ReplayedWeek(day.isoformat(), str(done), True)
    step = f"week {i}/{n} {day}:"
    log(f"{step} cutting the export")
    ingest_stage.cut(source, Path(wp.interim), day, labels.grace_days)
    log(f"{step} observation points")
    observe_stage.run(labels, wp)
    log(f"{step} features")
    features_stage.run(config.features, labels, wp)
    log(f"{step} training")
    try:
        train_stage.run(config.train, labels, wp, log=lambda m: None)
    except UserError as err:
        raise UserError(f"replaying {day}: the export cut there cannot train a model: {err}. "
                        "Replay fewer weeks (--replay)") from None
    log(f"{step} scoring")
    s = score_stage.run_weekly(config.score, config.report, wp, model_uri=str(wp.model),
                               tracking_uri="", experiment="", as_of=day, track=False,
                               engine=config.features.engine, spark=config.features.spark,
                               log=lambda m: None)
    return ReplayedWeek(day.isoformat(), s.folder, False)
