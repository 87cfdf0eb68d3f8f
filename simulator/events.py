"""The day's events as the simulation makes them: customer indexes, seconds from the start and
codes, buffered a few weeks and flushed to the export in time order. Ticket topic codes index
`TOPICS`: the background topics, then the two hidden problems' tickets."""

from __future__ import annotations

import numpy as np

TOPIC_BASE = ("technical", "account", "other", "billing", "delivery")
TOPIC_BASE_P = (0.45, 0.3, 0.17, 0.05, 0.03)
TOPICS = TOPIC_BASE + ("billing", "delivery")


class EventBuffer:
    """Rows of one table for a few weeks, flushed to the sink in time order."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        self.table, self.columns = table, columns
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.rows = 0

    def add(self, *arrays: np.ndarray) -> None:
        if len(arrays[0]):
            self.parts.append(arrays)

    def take(self) -> list[np.ndarray] | None:
        if not self.parts:
            return None
        cols = [np.concatenate([p[i] for p in self.parts]) for i in range(len(self.columns))]
        self.parts = []
        order = np.lexsort((cols[0], cols[1]))  # by timestamp, then customer
        self.rows += len(order)
        return [c[order] for c in cols]


class Events:
    """The four event tables, as customer indexes and seconds from the start."""

    def __init__(self) -> None:
        self.usage = EventBuffer("usage", ("customer", "ts", "messages"))
        self.charges = EventBuffer("charges", ("customer", "ts", "amount"))
        self.tickets = EventBuffer("tickets", ("customer", "ts", "topic", "resolved"))
        self.nps = EventBuffer("nps", ("customer", "ts", "score"))
