"""A stage's outputs are one directory, committed whole, with a record of what it was made from.

Each stage writes everything into a fresh temp folder beside its target, then lists every file
with its md5 in `_stage.json` (plus the digests of the stage outputs it read) and swaps the
folder in with one `renameat2(RENAME_EXCHANGE)`: at every moment the target is the whole
previous run or the whole new one, never a mix and never missing. The next run of the stage
removes what a killed run left beside the target.

Readers check what they read: every file against the md5 its writer recorded, and every pair
of inputs against each other (features built from another ingest than the one beside them,
a model evaluated on other features): a stale input stops with the command to rerun.

Nothing here deletes what the product did not write: a target that exists and holds no
record of the same stage is refused, not replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from pipeline import io

RECORD = "_stage.json"
PARTIAL = ".churn-partial"  # marks a temp folder whose run has not committed yet
KILL_AT = "CHURN_KILL_AT"  # test hook: SIGKILL this process at the named commit step
STEPS = ("begin", "written", "recorded", "exchanged")
FILE_STEPS = ("begin", "written", "exchanged")  # the steps of a single file's commit


class StaleInputError(UserError):
    """An input is missing, was changed by hand, or comes from another upstream run."""


class OutputRefused(UserError):
    """The target holds something the product did not write; it is never replaced."""


@dataclass(frozen=True)
class StageRecord:
    """What one run of a stage wrote (`files`: path -> md5) and read (`inputs`: name -> digest)."""

    stage: str
    files: dict[str, str]
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The run's identity: a hash of its files' hashes (no clock, no run id)."""
        return _md5_text(json.dumps(self.files, sort_keys=True))

    def to_json(self) -> str:
        return json.dumps({"stage": self.stage, "inputs": self.inputs, "files": self.files},
                          indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, folder: Path) -> StageRecord | None:
        path = Path(folder) / RECORD
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return cls(raw["stage"], dict(raw["files"]), dict(raw.get("inputs", {})))


def md5(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - a content hash, as DVC uses it
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _md5_text(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def _files(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (RECORD, PARTIAL):
            out[path.relative_to(folder).as_posix()] = md5(path)
    return out


def kill_point(step: str, stage: str = "") -> None:
    """The test hook: CHURN_KILL_AT=<step> kills the process at the first such step of any
    commit, CHURN_KILL_AT=<stage>:<step> only in that stage's (`churn weekly` commits an ingest,
    then a scoring). One environment lookup when the variable is unset."""
    at = os.environ.get(KILL_AT)
    if at is not None and at in (step, f"{stage}:{step}"):
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- writing


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    fn = getattr(_libc(), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _ours(folder: Path, stage: str) -> bool:
    """Did this stage write `folder` (a committed output or a killed run's temp folder)?"""
    if (folder / PARTIAL).exists():
        return True
    if not any(folder.iterdir()):
        return True
    record = (folder / RECORD)
    if record.is_file():
        try:
            return json.loads(record.read_text()).get("stage") == stage
        except (ValueError, AttributeError):
            return False
    return False


def clean_leftovers(target: Path, stage: str) -> list[Path]:
    """Remove the temp folders killed runs of `stage` left beside `target`; returns them."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for path in sorted(target.parent.glob(f".{target.name}.*.tmp")):
        if path.is_symlink():  # the previous run was a link swapped away (see stage_output)
            continue
        if path.is_dir() and _ours(path, stage):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def check_replaceable(target: Path, stage: str) -> None:
    """Refuse to replace a folder this stage did not write (the user's own files)."""
    target = Path(target)
    if target.is_file():
        raise OutputRefused(f"{target} is a file; `churn {stage}` writes a folder there. "
                            "Move it away or point the output elsewhere.")
    if target.is_dir() and not _ours(target, stage):
        raise OutputRefused(
            f"{target} exists and was not written by `churn {stage}` (no {RECORD} of that "
            f"stage in it): it is never replaced. Choose another output folder, or move or "
            f"remove {target} yourself.")
    record = StageRecord.read(target) if target.is_dir() else None
    if record is not None:
        extra = sorted(p.relative_to(target).as_posix() for p in target.rglob("*")
                       if p.is_file() and p.name not in (RECORD, PARTIAL)
                       and p.relative_to(target).as_posix() not in record.files)
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            raise OutputRefused(
                f"{target} holds files `churn {stage}` did not write ({shown}): they would be "
                f"lost when the folder is replaced. Move them out of {target} first.")


def claim(target: Path, stage: str) -> Path:
    """Check, before any work, that the stage may write `target`; returns the folder it will
    really replace (a symlinked output folder is written where the link points)."""
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    check_replaceable(target, stage)
    return target


@contextlib.contextmanager
def lock(target: Path, *, shared: bool = False, wait: bool = True) -> Iterator[None]:
    """One writer per output at a time: a second run waits for the first to commit. `shared`
    lets many readers hold it at once (none with a writer); `wait=False` raises
    BlockingIOError instead of waiting. The lock file beside `target` is never truncated,
    never opened through a link and never removed (a process may be waiting on it)."""
    fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                 0o666)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                    | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def stage_output(target: Path, stage: str,
                 inputs: Mapping[str, StageRecord | str] | None = None) -> Iterator[Path]:
    """Yield a temp folder to write the stage's outputs into; on success it becomes `target`.

    `inputs`: the records (or digests) of the stage outputs this run read; their digests are
    recorded, so the next stage can tell which run its inputs came from. On an exception the temp folder
    is removed and the target is left as it was.
    """
    target = Path(target)
    if target.is_symlink():  # write where the link points; the link itself stays
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with lock(target):
        clean_leftovers(target, stage)
        check_replaceable(target, stage)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        (tmp / PARTIAL).touch()
        tmp.chmod(0o777 & ~io.umask())  # mkdtemp makes 0700
        try:
            kill_point("begin", stage)
            yield tmp
            kill_point("written", stage)
            digests = {name: r if isinstance(r, str) else r.digest
                       for name, r in sorted((inputs or {}).items())}
            record = StageRecord(stage, _files(tmp), digests)
            (tmp / RECORD).write_text(record.to_json())
            (tmp / PARTIAL).unlink()
            _fsync_tree(tmp)
            kill_point("recorded", stage)
            _commit(tmp, target, stage)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _commit(tmp: Path, target: Path, stage: str) -> None:
    if not target.exists():
        os.rename(tmp, target)
    elif not _exchange(tmp, target):  # no atomic swap here: the previous run moves aside a moment
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.replace(target, aside / "previous")
        os.rename(tmp, target)
        shutil.rmtree(aside, ignore_errors=True)
    kill_point("exchanged", stage)  # after a swap tmp holds the previous run: removed below
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_leftovers(target: Path) -> list[Path]:
    """The temp files `write_file` makes beside `target` (`.<name>.<8 characters>.tmp`)."""
    prefix, n = f".{target.name}.", len(target.name) + 2
    return sorted(p for p in target.parent.glob(f"{glob.escape(prefix)}*.tmp")
                  if len(p.name) == n + 12 and p.name[n:n + 8].replace("_", "a").isalnum()
                  and p.is_file() and not p.is_symlink())


@contextlib.contextmanager
def write_file(target: Path, stage: str) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one rename.

    One writer at a time (the lock beside the target); temp files killed runs left beside the
    target are removed first (under the lock, no other run is writing one). A kill at any
    moment leaves the previous file or the new one, whole."""
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise UserError(f"{str(target) or '(empty)'} names a folder, not a file: give the file's "
                        "path")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # a device (/dev/null), a pipe, a folder or a link: renaming over it would replace it
        raise UserError(f"{target} is not a regular file (a device, pipe, folder or link): it "
                        "is left as it is; give the path of a regular file, or of a new one")
    target.parent.mkdir(parents=True, exist_ok=True)  # for the lock beside it
    with lock(target):
        for old in _file_leftovers(target):
            old.unlink(missing_ok=True)
        with io.atomic_path(target) as tmp:
            kill_point("begin", stage)
            yield tmp
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            kill_point("written", stage)
        kill_point("exchanged", stage)
        _fsync_dir(target.parent)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Input:
    """A stage output another stage reads: its folder and the stage that writes it."""

    name: str  # the paths key: interim, observations, features, models, evaluation, sim
    folder: Path
    stage: str  # the command that writes it


def read(inp: Input) -> StageRecord:
    """The input's record, after checking every file it lists against its md5 (about 1 s per
    600 MB: cheap next to reading them)."""
    folder = Path(inp.folder)
    rerun = f"run `churn {inp.stage}`"
    if not folder.is_dir():
        raise StaleInputError(f"{folder} not found: {rerun} first.")
    record = StageRecord.read(folder)
    if record is None:
        raise StaleInputError(
            f"{folder} has no {RECORD}: it was not written whole by `churn {inp.stage}` (an "
            f"older version, or copied by hand). Move or remove {folder}, then {rerun}.")
    if record.stage != inp.stage:
        raise StaleInputError(f"{folder} was written by `churn {record.stage}`, not "
                              f"`churn {inp.stage}`: check paths in params.yaml.")
    for name in record.files:
        path = folder / name
        if not path.is_file():
            raise StaleInputError(f"{path} is missing from the output of `churn {inp.stage}`: "
                                  f"{rerun}.")
        if md5(path) != record.files[name]:
            raise StaleInputError(f"{path} changed after `churn {inp.stage}` wrote it: {rerun}.")
    return record


def read_all(*inputs: Input) -> dict[str, StageRecord]:
    """Read several inputs and check that they belong together: where one was made from
    another (its record names it), it must be from the run that is there now."""
    records = {inp.name: read(inp) for inp in inputs}
    stage_of = {inp.name: inp.stage for inp in inputs}
    for inp in inputs:
        for upstream, digest in records[inp.name].inputs.items():
            if upstream in records and records[upstream].digest != digest:
                raise StaleInputError(
                    f"{inp.folder} was made from another run of `churn {stage_of[upstream]}` "
                    f"than the one in {dict((i.name, i.folder) for i in inputs)[upstream]} now: "
                    f"run `churn {inp.stage}` again (or `dvc repro`).")
    return records
