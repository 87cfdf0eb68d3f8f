"""Single files written atomically (beside the target, then renamed), and JSON in and out.

Whole stage outputs are committed by `pipeline.artifacts`; this is for single files.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def umask() -> int:
    """The process umask (read without changing it): temp files get the usual mode."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success it replaces the target."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def json_text(obj: Any) -> str:
    """The JSON every output is written in: indented, keys sorted (the same bytes each run)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def write_json(obj: Any, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json_text(obj))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
