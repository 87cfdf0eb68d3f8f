"""SQL text helpers shared by every phase: quoting, the blank characters, error first lines."""

from __future__ import annotations

import re

from common.errors import first_line

# what `trim` removes around a value (and what counts as blank)
WS = " \t\r\n\u00a0\ufeff"


def qi(name: str) -> str:
    """Quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def num(value: float) -> str:
    return f"{value:g}"


def describe(err: Exception) -> str:
    """A DuckDB error's first line, with the line number it mentions."""
    msg = str(err)
    m = re.search(r"Line: (\d+)", msg)
    first = first_line(err)
    return f"{first} (line {m.group(1)})" if m and "line" not in first.lower() else first


def clip(text: str | None, n: int = 120) -> str:
    text = (text or "").rstrip("\r\n")
    return text if len(text) <= n else text[: n - 3] + "..."
