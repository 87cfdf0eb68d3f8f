"""Where the feature expressions run: an Ibis backend whose days are the business's days."""

from __future__ import annotations

from common.errors import UserError
from features.config import ENGINES


def connect(engine: str, timezone: str):
    """An Ibis connection with its session time zone set to the business time zone."""
    import ibis

    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql(f"SET TimeZone = '{timezone}'")
        return con
    raise UserError(f"features.engine {engine!r} is not an engine: use one of {list(ENGINES)}")
