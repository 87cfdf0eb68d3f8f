"""simulate(config, labels, sink) on its own, without the pipeline's file sink."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pyarrow as pa

from simulator.config import SimulateConfig
from simulator.engine import simulate
from tests.simulator.worlds import label_config, simulate_config


class ListSink:
    def __init__(self) -> None:
        self.batches: dict[str, list[pa.Table]] = defaultdict(list)

    def append(self, table: str, batch: pa.Table) -> None:
        self.batches[table].append(batch)

    def table(self, name: str) -> pa.Table:
        return pa.concat_tables(self.batches[name])


def _small(**overrides) -> SimulateConfig:
    return dataclasses.replace(simulate_config(), customers=300, days=200, truth_samples=16,
                               **overrides)


def test_simulate_streams_every_table_and_sums_up():
    sink, seen = ListSink(), []
    summary = simulate(_small(), label_config(), sink, progress=lambda d, n: seen.append((d, n)))
    assert set(sink.batches) == {"usage", "charges", "tickets", "nps", "subscriptions",
                                 "customers", "truth"}
    for name, rows in summary.rows.items():
        assert sink.table(name).num_rows == rows, name
    assert summary.customers == 300 and summary.truth_points == sink.table("truth").num_rows
    usage = sink.table("usage")["ts"].to_numpy()
    assert (usage[1:] >= usage[:-1]).all()  # batches arrive in time order
    assert seen[-1] == (200, 200)


def test_same_config_same_world_and_labels_leave_the_export_alone():
    a, b = ListSink(), ListSink()
    simulate(_small(), label_config(), a)
    # the pending window of a lapse (grace_days) changes which truth points exist, not the world
    labels = dataclasses.replace(label_config(), horizon_days=30, every_days=7, grace_days=5)
    simulate(_small(), labels, b)
    for name in ("usage", "charges", "tickets", "nps", "subscriptions", "customers"):
        assert a.table(name).equals(b.table(name)), name
    assert not a.table("truth").equals(b.table("truth"))
