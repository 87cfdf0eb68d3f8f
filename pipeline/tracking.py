"""Where MLflow runs go: the project's SQLite store by default, a team server when asked.

Nothing happens at import time; the CLI resolves the URI once and hands it down.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from common.errors import UserError

# MLflow's own defaults (120 s per request, 7 retries with backoff) make a failing server hang
# `churn register` for about 4 minutes; a tracking call here is bounded to well under a minute.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


class TrackingError(UserError):
    """The tracking server cannot be used (unreachable, or failing its API)."""


def project_root() -> Path:
    """DVC sets DVC_ROOT for every stage (the parent repo, even for queued experiments)."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def resolve_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def artifact_root() -> str:
    return (project_root() / "mlartifacts").as_uri()


def bound_http_time() -> None:
    """Bounded MLflow HTTP calls, unless the user set their own limits."""
    for key, value in HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def failing_server(uri: str, err: Exception) -> TrackingError:
    """The error for a server that answered /health but failed an API call."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    return TrackingError(
        f"MLflow server {uri} failed a request ({first}). Check the server, fix "
        f"MLFLOW_TRACKING_URI, or unset it to use the project's local store "
        f"({project_root() / 'mlflow.db'}).")


@contextlib.contextmanager
def server_errors(uri: str) -> Iterator[None]:
    """Turn a remote server's failures into a TrackingError naming the URI (a local store's
    failures are bugs and keep their traceback)."""
    if not uri.startswith(("http://", "https://")):
        yield
        return
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as err:
        raise failing_server(uri, err) from None
    except Exception as err:  # requests' errors (retries exhausted, bad status)
        if type(err).__module__.startswith(("requests", "urllib3")):
            raise failing_server(uri, err) from None
        raise


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the URI, when a tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):  # noqa: S310
            pass
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise TrackingError(
            f"MLflow server {uri} did not answer ({err}). Start it, fix MLFLOW_TRACKING_URI, "
            f"or unset it to use the project's local store ({project_root() / 'mlflow.db'})."
        ) from None


@contextlib.contextmanager
def logged_after_writing(what: str, folder: Path) -> Iterator[None]:
    """Logging an output already written: a server that fails says so, and that `what` (e.g.
    "the scores are") is written in `folder` all the same (other errors pass unchanged)."""
    try:
        yield
    except TrackingError as err:
        raise TrackingError(f"{what} written ({folder}) but not logged to MLflow: {err}") from None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise the first creation and migration of a SQLite store across processes."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_suffix(db.suffix + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def setup(uri: str, experiment: str) -> str:
    """Point MLflow at `uri`, create the store and experiment once; return the experiment id."""
    import mlflow

    bound_http_time()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    with store_lock(uri):
        found = mlflow.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else mlflow.create_experiment(
            experiment, artifact_location=artifact_root())
    mlflow.set_experiment(experiment_id=exp_id)
    end_killed_runs(exp_id)
    return exp_id


# the tags that name the process logging a run (git_state adds them to every run's tags)
HOST_TAG, PID_TAG = "churn_host", "churn_pid"


def process_host() -> str:
    """This machine's name and pid namespace: two containers may share a host name, never a
    pid namespace (where /proc has none, the host name alone)."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/pidns:{ns}"


def running(pid: int) -> bool:
    """Whether a process of this machine with that id still runs (a killed command's does
    not; a pid taken again by another process counts as running: nothing is ended then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def end_killed_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the runs a killed `churn` command left RUNNING in the experiment: runs that
    name a process of this machine (their churn_host and churn_pid tags) which no longer runs.
    Nothing is deleted; a run without those tags (the user's own, or logged elsewhere) is left
    as it is. Returns the runs ended."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    host, ended = process_host(), []
    try:  # housekeeping: a server refusing it (another user's run) never stops the command
        runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=1000)
        for run in runs:
            tags = run.data.tags
            pid = tags.get(PID_TAG, "")
            if tags.get(HOST_TAG) == host and pid.isdigit() and not running(int(pid)):
                client.set_terminated(run.info.run_id, "KILLED")
                ended.append(run.info.run_id)
    except MlflowException:
        pass
    return ended


def git_state() -> dict[str, str]:
    """The tags every run carries: the code's git commit and whether the tree is dirty, and the
    process logging the run (so the next run can end one whose process was killed)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"git_commit": git("rev-parse", "HEAD") or "unknown",
            "git_dirty": str(bool(git("status", "--porcelain", "--untracked-files=no"))),
            HOST_TAG: process_host(), PID_TAG: str(os.getpid())}
