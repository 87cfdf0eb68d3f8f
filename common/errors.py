"""One base for every mistake a user can fix: a bad export, bad params, a missing or stale
input, a contract mismatch, an unreachable tracking server.

The CLI catches only `UserError`, prints its message and exits 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can change; the message says what."""


class ConfigError(UserError):
    """A setting is out of range or inconsistent. `key` is its dotted name within its section;
    the params loader prefixes the file and the section."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key, self.detail = key, message


def check(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless `ok`: the range checks of every config."""
    if not ok:
        raise ConfigError(key, message)


def first_line(err: BaseException) -> str:
    """An error's first line (libraries such as DuckDB and Spark put pages after it)."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__
