"""Stage `simulate`: write the simulated business's export (and, apart from it, the truth)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline import io
from pipeline.params import LabelParams, SimulateParams, json_ready
from simulator.engine import LabelGrid, SimSummary, simulate


class FileSink:
    """Streams each table into one file: the export in the chosen format, the truth as Parquet."""

    def __init__(self, export_dir: Path, truth_dir: Path, fmt: str) -> None:
        self.export_dir, self.truth_dir, self.fmt = export_dir, truth_dir, fmt
        self.writers: dict[str, pacsv.CSVWriter | pq.ParquetWriter] = {}

    def append(self, table: str, batch: pa.Table) -> None:
        if table not in self.writers:
            if table == "truth":
                path = self.truth_dir / "truth.parquet"
                self.writers[table] = pq.ParquetWriter(path, batch.schema)
            elif self.fmt == "csv":
                path = self.export_dir / f"{table}.csv"
                self.writers[table] = pacsv.CSVWriter(path, batch.schema)
            else:
                path = self.export_dir / f"{table}.parquet"
                self.writers[table] = pq.ParquetWriter(path, batch.schema)
        self.writers[table].write_table(batch)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def run(
    sim: SimulateParams,
    labels: LabelParams,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> SimSummary:
    """Simulate into `out` (export/, truth/, world.json), replacing it whole or not at all."""
    with io.atomic_dir(out) as tmp:
        export, truth = tmp / "export", tmp / "truth"
        export.mkdir()
        truth.mkdir()
        sink = FileSink(export, truth, sim.format)
        try:
            summary = simulate(
                customers=sim.customers, seed=sim.seed, start=sim.start, days=sim.days,
                string_ids=sim.string_ids, truth_samples=sim.truth_samples, world=sim.world,
                labels=LabelGrid(labels.horizon_days, labels.every_days,
                                 labels.min_tenure_days, labels.early_life_days),
                sink=sink, progress=progress,
            )
        finally:
            sink.close()
        io.write_json(json_ready(dataclasses.asdict(summary)), truth / "world.json")
    return summary


def skip(out: Path, raw: str) -> None:
    """With your own export, the stage leaves a note instead of a world (DVC still gets its out)."""
    with io.atomic_dir(out) as tmp:
        (tmp / "NOT_SIMULATED.txt").write_text(
            f"paths.raw is {raw}: the pipeline reads your export, so nothing was simulated.\n"
        )
