"""Stage `features`: the point-in-time feature table for every observation point."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from features import windows
from features.catalogue import CATALOGUE, CATEGORICAL, FEATURES
from features.config import FeatureConfig, LabelConfig
from pipeline import artifacts, engines, io, tables
from pipeline.params import Paths

STAGE = "features"


@dataclass
class FeatureSummary:
    engine: str
    rows: int
    features: int
    vocab: dict[str, list[str]]


def _distinct(table, column: str) -> tuple[str, ...]:
    values = table.select(column).distinct().to_pyarrow().column(0).to_pylist()
    return tuple(sorted(v for v in values if v is not None))


def expression(feat: FeatureConfig, labels: LabelConfig, paths: Paths):
    """The connection, the feature table's Ibis expression over the interim files and the
    observation points, its category vocabulary, its windows and the inputs' records."""
    inputs = artifacts.read_all(*tables.inputs(paths, "interim", "observations"))
    m = tables.manifest(paths)
    con = engines.connect(feat.engine, m.timezone, feat.spark)
    src = {name: con.read_parquet(str(path), table_name=name)
           for name, path in tables.interim_files(paths, m).items()}
    points = con.read_parquet(str(paths.observations_table), table_name="points")
    engines.check_wall_clock(con, [*src, "points"])
    vocab = windows.Vocab(plans=_distinct(src["subscriptions"], "plan"),
                          channels=_distinct(src["customers"], "channel"))
    spec = windows.Spec(feat.window_days, feat.recent_days, labels.horizon_days)
    return con, windows.build(points, src, vocab=vocab, spec=spec), vocab, spec, inputs


def run(feat: FeatureConfig, labels: LabelConfig, paths: Paths) -> FeatureSummary:
    artifacts.claim(Path(paths.features), STAGE)
    con, expr, vocab, spec, inputs = expression(feat, labels, paths)
    meta = {
        "spec": dataclasses.asdict(spec),
        "vocab": {"plan_code": list(vocab.plans), "channel_code": list(vocab.channels)},
        "features": [dataclasses.asdict(f) for f in CATALOGUE],
        "categorical": list(CATEGORICAL),
        "dtypes": windows.feature_dtypes(),
    }
    with artifacts.stage_output(Path(paths.features), STAGE, inputs) as tmp:
        table = tmp / paths.features_table.name
        engines.write_parquet(con, expr, table, keys=("customer_id", "t"))
        rows = pq.read_metadata(table).num_rows
        io.write_json(meta, tmp / paths.feature_meta.name)
    return FeatureSummary(engine=feat.engine, rows=rows, features=len(FEATURES),
                          vocab=meta["vocab"])


def render(s: FeatureSummary, console, *, paths: Paths) -> None:
    """The one-line summary: rows, features, engine, category vocabulary."""
    console.print(
        f"features -> {paths.features_table}: {s.rows:,} points x {s.features} features on "
        f"{s.engine}; plans {s.vocab['plan_code']}, channels {s.vocab['channel_code']}. "
        f"Catalogue: docs/features.md"
    )
