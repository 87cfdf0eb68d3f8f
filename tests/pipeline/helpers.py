"""Test helpers: a params.yaml variant written into a temp folder, a stage output recommitted
with a change, the project as a temp git + DVC repo and commands run in it as a user runs them,
and a tracking server that answers its health check and fails every API call."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from pipeline import artifacts

ROOT = Path(__file__).resolve().parents[2]


def write_params(folder: Path, **changes: dict) -> Path:
    """Copy the repo's params.yaml into `folder`, updating sections (`simulate={...}`)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in changes.items():
        raw[section].update(values)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def recommit(source: Path, target: Path, change: Callable[[Path], None] | None = None) -> None:
    """A new run of the stage that wrote `source`, into `target`: the same files and inputs,
    with `change` applied (a test's way to make a degraded or altered output that the next
    stage accepts as a whole, recorded run)."""
    record = artifacts.StageRecord.read(source)
    with artifacts.stage_output(target, record.stage, record.inputs) as tmp:
        for name in record.files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(source) / name, tmp / name)
        if change is not None:
            change(tmp)


def project_repo(repo: Path) -> Path:
    """The project's code and dvc.yaml copied into `repo`, as a user's clone has them (write
    params.yaml with `write_params`, then `init_repo`)."""
    from tests.imports import PACKAGES

    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, repo / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    return repo


def init_repo(repo: Path) -> None:
    """git init, dvc init and a first commit of what `repo` holds (git-ignored data stays out)."""
    run_command(["git", "init", "-q"], repo)
    run_command([sys.executable, "-m", "dvc", "init", "-q"], repo)
    run_command(["git", "add", "-A"], repo)
    run_command(["git", "commit", "-qm", "init"], repo)


def run_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command as a user would in `cwd` (the venv's tools on PATH), asserting exit 0."""
    # the project's own default store: nothing inherited from other tests or the shell
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_ROOT")}
    env |= {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}
    # experiments commit to git refs: give them an identity on a machine without one
    env |= {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "t"), ("EMAIL", "t@t"))}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


class _HalfAlive(http.server.BaseHTTPRequestHandler):
    """Answers /health, fails every API call with 503."""

    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path.startswith("/health") else 503)
        self.end_headers()
        self.wfile.write(b"OK" if self.path.startswith("/health") else b"unavailable")

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def failing_tracking_server() -> Iterator[str]:
    """The URI of a local server that answers /health and fails every API call (503)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HalfAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
