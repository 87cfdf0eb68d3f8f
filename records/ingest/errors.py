"""The one error ingest raises for the export's own faults."""

from __future__ import annotations

from common.errors import UserError


class ContractError(UserError):
    """The export as a whole breaks the contract (a file, a column, the share of bad rows, an
    empty table, an as-of date outside the export); the message names the file and what to
    change."""
