"""Stage `simulate`: write the simulated business's export (and, apart from it, the truth)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.config import LabelConfig
from pipeline import artifacts, io
from pipeline.params import json_ready
from simulator.config import SimulateConfig
from simulator.engine import SimSummary, simulate

STAGE = "simulate"


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
    sim: SimulateConfig,
    labels: LabelConfig,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> SimSummary:
    """Simulate into `out` (export/, truth/), replacing a previous world whole or not at all.
    A folder the simulator did not write is refused, never emptied."""
    with artifacts.stage_output(out, STAGE) as tmp:
        export, truth = tmp / "export", tmp / "truth"
        export.mkdir()
        truth.mkdir()
        sink = FileSink(export, truth, sim.format)
        try:
            summary = simulate(sim, labels, sink, progress)
        finally:
            sink.close()
        io.write_json(json_ready(dataclasses.asdict(summary)), truth / "world.json")
    return summary


def skip(out: Path, raw: str) -> None:
    """With your own export, the stage leaves a note instead of a world (DVC still gets its out)."""
    with artifacts.stage_output(out, STAGE) as tmp:
        (tmp / "NOT_SIMULATED.txt").write_text(
            f"paths.raw is {raw}: the pipeline reads your export, so nothing was simulated.\n"
        )


def render_skipped(raw: str, sim_export: str, console) -> None:
    """Said before `skip` writes its note: the params read a real export."""
    console.print(
        f"paths.raw is [bold]{raw}[/] (your export), not the simulator's "
        f"{sim_export}: nothing to simulate."
    )


def render(summary: SimSummary, console, *, target: Path) -> None:
    """The one-screen summary: rows per table, then the world in one sentence."""
    from rich.table import Table

    table = Table(title=f"simulated world -> {target}", show_header=True)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    table.add_row("truth points", f"{summary.truth_points:,}")
    console.print(table)
    console.print(
        f"customers {summary.customers:,} (referred {summary.referred:,}), "
        f"periods {summary.periods:,}, refused renewals {summary.churned_periods:,}, "
        f"win-backs {summary.reactivations:,}; export date {summary.as_of}; "
        f"mean early-life truth {summary.mean_truth_early_life:.3f}"
    )
