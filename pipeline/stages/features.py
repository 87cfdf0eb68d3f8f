"""Stage `features`: the point-in-time feature table for every observation point."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import ibis
import pyarrow.parquet as pq

from features import windows
from features.catalogue import CATALOGUE, CATEGORICAL, FEATURES
from pipeline import io, tables
from pipeline.params import FeatureParams, LabelParams, Paths


@dataclass
class FeatureSummary:
    engine: str
    rows: int
    features: int
    vocab: dict[str, list[str]]


def connect(engine: str, timezone: str):
    """An Ibis backend whose days are the business's days."""
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql(f"SET TimeZone = '{timezone}'")
        return con
    raise NotImplementedError(
        f"features.engine {engine!r} is not available yet: use 'duckdb' (the Spark path is "
        "on the roadmap)")


def _distinct(table, column: str) -> tuple[str, ...]:
    values = table.select(column).distinct().to_pyarrow().column(0).to_pylist()
    return tuple(sorted(v for v in values if v is not None))


def expression(feat: FeatureParams, labels: LabelParams, paths: Paths):
    """The connection, the feature table's Ibis expression over the interim files and the
    observation points, its category vocabulary and its windows."""
    m = tables.manifest(paths)
    con = connect(feat.engine, m.timezone)
    src = {name: con.read_parquet(str(path), table_name=name)
           for name, path in tables.interim_files(paths, m).items()}
    if not paths.observations.exists():
        raise tables.MissingInputError(f"{paths.observations} not found: run `churn observe`")
    points = con.read_parquet(str(paths.observations), table_name="points")
    vocab = windows.Vocab(plans=_distinct(src["subscriptions"], "plan"),
                          channels=_distinct(src["customers"], "channel"))
    spec = windows.Spec(feat.window_days, feat.recent_days, labels.horizon_days)
    return con, windows.build(points, src, vocab=vocab, spec=spec), vocab, spec


def run(feat: FeatureParams, labels: LabelParams, paths: Paths) -> FeatureSummary:
    con, expr, vocab, spec = expression(feat, labels, paths)
    with io.atomic_path(paths.features) as tmp:
        con.to_parquet(expr, str(tmp))
    rows = pq.read_metadata(paths.features).num_rows
    meta = {
        "spec": dataclasses.asdict(spec),
        "vocab": {"plan_code": list(vocab.plans), "channel_code": list(vocab.channels)},
        "features": [dataclasses.asdict(f) for f in CATALOGUE],
        "categorical": list(CATEGORICAL),
        "dtypes": windows.feature_dtypes(),
    }
    io.write_json(meta, paths.feature_meta)
    return FeatureSummary(engine=feat.engine, rows=rows, features=len(FEATURES),
                          vocab=meta["vocab"])
