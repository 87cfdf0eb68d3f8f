"""The same feature definitions on Spark and on DuckDB give the same table.

`features/windows.py`'s Ibis expressions run on both engines through the product's own
connections (pipeline/engines.py): the features stage on a small simulated world, hand-made
boundary cases, and 200 small random worlds (drawn by Hypothesis, then run as 4 unions of 50:
one session for the module, one Spark job per union, each in another time zone). Equal ids,
points and counts; floats within 1e-9 relative; nulls in the same places; the same dtypes once
timestamp units are set aside. Spark must compute the aggregations itself: its physical plan
aggregates and windows over the Parquet scans.

These tests need PySpark (`make install` installs the `spark` extra) and Java 17+. Without them
they fail; set CHURN_SKIP_SPARK=1 to skip them on a machine that has neither.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from features import windows
from features.catalogue import FEATURES
from features.config import SparkConfig
from pipeline import engines
from pipeline.artifacts import md5
from pipeline.stages import features as features_stage
from records.contract import TOPICS
from tests.conftest import build_pipeline
from tests.features.window_kit import COLUMNS, DATE_COLUMNS, SPEC, frame

# PySpark leaves the local sockets it collects results through to the garbage collector
pytestmark = [pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

TZ = "Asia/Tehran"  # UTC+03:30: a UTC day starts at 03:30 there
# small jobs on 2 cores: few shuffle partitions, no UI
SPARK = SparkConfig(master="local[2]", conf={"spark.sql.shuffle.partitions": 2,
                                             "spark.ui.enabled": False})
VOCAB = windows.Vocab(plans=("basic", "pro"), channels=("ads", "organic"))
KEYS = ["customer_id", "t"]
RTOL = 1e-9
N_WORLDS, JOBS = 200, 4  # small random worlds, in JOBS Spark jobs
REPORT: dict[str, list] = {"cases": [], "max_rel": []}


# ------------------------------------------------------------------------------------ Spark

def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (`make install` installs the spark extra)"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime (Spark needs Java 17+: apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="module")
def spark():
    """One Spark session for the module, made by the product's own connect()."""
    if os.environ.get("CHURN_SKIP_SPARK") == "1":
        pytest.skip("CHURN_SKIP_SPARK=1")
    missing = _missing()
    if missing:
        pytest.fail(f"{missing}; the Spark parity tests cannot run. Set CHURN_SKIP_SPARK=1 to "
                    "skip them on a machine without Spark.", pytrace=False)
    con = engines.connect("spark", TZ, SPARK)
    yield con
    rels = REPORT["max_rel"]
    print(f"\nSpark parity: {len(REPORT['cases'])} comparisons, "
          f"{sum(n for _, n in REPORT['cases']):,} rows, max relative difference "
          f"{max(rels, default=0.0):.3g}")
    for (what, rows), rel in zip(REPORT["cases"], rels, strict=True):
        print(f"  {what}: {rows:,} rows, max relative difference {rel:.3g}")
    con._session.stop()
    _stop_jvm()
    gc.collect()  # while this module's warning filters apply


def _stop_jvm() -> None:
    """End the JVM PySpark launched (it exits when its stdin closes), so the rest of the test
    session does not carry it; a later session would start a new one."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None or getattr(gateway, "proc", None) is None:
        return
    with contextlib.suppress(Exception):
        gateway.shutdown()
    gateway.proc.stdin.close()
    gateway.proc.wait(timeout=60)
    SparkContext._gateway = SparkContext._jvm = None


def _explain(df) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        df.explain(mode="formatted")
    return out.getvalue()


# ------------------------------------------------------------------------------- comparison

def _normalised_dtype(dtype) -> str:
    """Timestamp units differ by engine (DuckDB: us, Spark through pandas: ns)."""
    name = str(dtype)
    return "datetime64" if name.startswith("datetime64") else name


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame, what: str) -> None:
    assert list(duck.columns) == list(spark.columns), what
    assert len(duck) == len(spark), f"{what}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"
    assert [_normalised_dtype(t) for t in duck.dtypes] == [
        _normalised_dtype(t) for t in spark.dtypes], f"{what}: dtypes differ"
    duck, spark = duck.reset_index(drop=True), spark.reset_index(drop=True)
    # the same points in the same order (both sort by customer_id, t)
    for key in KEYS:
        a, b = duck[key], spark[key]
        if a.dtype.kind == "M" or b.dtype.kind == "M":
            a, b = pd.to_datetime(a).astype("datetime64[us]"), pd.to_datetime(b).astype(
                "datetime64[us]")
        assert a.equals(b), f"{what}: {key} differs"
    worst, bad = 0.0, []
    for name in duck.columns:
        a, b = duck[name], spark[name]
        na, nb = a.isna().to_numpy(), b.isna().to_numpy()
        if not (na == nb).all():
            bad.append(f"{name}: nulls differ at {_where(duck, ~(na == nb))}")
            continue
        if a.dtype.kind == "f":
            x, y = a.to_numpy("float64")[~na], b.to_numpy("float64")[~nb]
            scale = np.maximum(np.abs(x), np.abs(y))
            rel = np.divide(np.abs(x - y), scale, out=np.zeros_like(x), where=scale > 0)
            worst = max(worst, float(rel.max(initial=0.0)))
            off = np.zeros(len(a), bool)
            off[~na] = rel > RTOL
            if off.any():
                bad.append(f"{name}: max rel {rel.max():.3g} at {_where(duck, off)}")
        elif a.dtype.kind == "M":
            if not a.astype("datetime64[us]").equals(b.astype("datetime64[us]")):
                bad.append(f"{name}: differs")
        elif not a[~na].reset_index(drop=True).equals(b[~nb].reset_index(drop=True)):
            bad.append(f"{name}: differs at {_where(duck, (a != b).to_numpy() & ~na)}")
    REPORT["cases"].append((what, len(duck)))
    REPORT["max_rel"].append(worst)
    assert not bad, f"{what}: Spark and DuckDB differ:\n  " + "\n  ".join(bad)


def _where(table: pd.DataFrame, mask) -> list:
    rows = table.loc[mask, KEYS].head(5)
    return [(r.customer_id, str(r.t)[:10]) for r in rows.itertuples()]


# ------------------------------------------------------ building on both engines from Parquet

def write_world(folder: Path, points: list[tuple], tables: dict[str, list[tuple]]) -> Path:
    """Tables in window_kit's columns (timestamps as the interim's naive microseconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrow = {"str": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
             "datetime64[s]": pa.timestamp("us")}
    for name, columns in COLUMNS.items():
        df = frame(name, tables.get(name, []))
        schema = pa.schema([(c, pa.date32() if c in DATE_COLUMNS else arrow[t])
                            for c, t in columns.items()])
        for c in DATE_COLUMNS & set(df.columns):
            df[c] = df[c].dt.date
        pq.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False),
                       folder / f"{name}.parquet")
    pts = pd.DataFrame(points, columns=["customer_id", "t", "run", "run_start"])
    for c in ("t", "run_start"):
        pts[c] = pd.to_datetime(pts[c]).dt.date
    schema = pa.schema([("customer_id", pa.string()), ("t", pa.date32()), ("run", pa.int64()),
                        ("run_start", pa.date32())])
    pq.write_table(pa.Table.from_pandas(pts, schema=schema, preserve_index=False),
                   folder / "points.parquet")
    return folder


def build_on(con, folder: Path):
    src = {name: con.read_parquet(str(folder / f"{name}.parquet"), table_name=name)
           for name in COLUMNS}
    pts = con.read_parquet(str(folder / "points.parquet"), table_name="points")
    engines.check_wall_clock(con, [*src, "points"])
    expr = windows.build(pts, src, vocab=VOCAB, spec=SPEC)
    return con.execute(expr), expr


def both(spark, folder: Path, tz: str = TZ, what: str = "") -> pd.DataFrame:
    duck, _ = build_on(engines.connect("duckdb", tz), folder)
    spark_con = engines.connect("spark", tz, SPARK) if tz != TZ else spark
    got, _ = build_on(spark_con, folder)
    if tz != TZ:
        engines.connect("spark", TZ, SPARK)  # back to the module's zone
    assert_same(duck, got, what or folder.name)
    return duck.set_index(KEYS)


# ------------------------------------------------------------------ the features stage itself

def test_features_stage_on_a_simulated_world(spark, params, tiny_world, tmp_path):
    paths = build_pipeline(params, tiny_world, tmp_path)  # the DuckDB stage
    feat = dataclasses.replace(params.features, engine="spark", spark=SPARK)
    on_spark = dataclasses.replace(paths, features=str(tmp_path / "spark_features"))
    summary = features_stage.run(feat, params.labels, on_spark)
    assert summary.engine == "spark"

    a, b = pq.read_table(paths.features_table), pq.read_table(on_spark.features_table)
    assert [(f.name, f.type) for f in a.schema] == [(f.name, f.type) for f in b.schema]
    assert a.num_rows == b.num_rows == summary.rows > 1000
    assert_same(a.to_pandas(), b.to_pandas(), "tiny world, features stage")
    assert sorted(p.name for p in Path(on_spark.features).iterdir()) == sorted(
        p.name for p in Path(paths.features).iterdir())
    # a rerun gives the same bytes (a stage output is reproducible on either engine)
    again = dataclasses.replace(paths, features=str(tmp_path / "spark_again"))
    features_stage.run(feat, params.labels, again)
    assert md5(on_spark.features_table) == md5(again.features_table)

    # the aggregations are Spark's own: hash aggregates and windows over the Parquet scans
    con, expr, *_ = features_stage.expression(feat, params.labels, on_spark)
    assert con.name == "pyspark"
    plan = _explain(con.raw_sql(con.compile(expr)))
    physical = plan.split("== Physical Plan ==")[-1]
    assert "HashAggregate" in physical, plan[:3000]
    assert "Window" in physical, plan[:3000]  # the LAG over each customer's active days
    assert "SortMergeJoin" in physical or "BroadcastHashJoin" in physical, plan[:3000]
    scans = [line for line in physical.splitlines() if "Scan parquet" in line]
    assert len(scans) >= 7, plan[:3000]
    for table in ("usage", "charges", "tickets", "subscriptions", "customers", "nps"):
        assert f"{table}.parquet" in plan, table
    for foreign in ("LocalTableScan", "ExistingRDD", "ArrowEvalPython", "BatchEvalPython",
                    "PythonUDF", "MapInPandas", "FlatMapGroupsInPandas"):
        assert foreign not in physical, foreign


def test_weekly_scoring_on_spark_gives_the_duckdb_scores(spark, params, built, trained,
                                                        tmp_path):
    """`churn score` with features.engine spark: the scoring points' features on Spark, then
    the same scoring; every score, band, rank and reason equals the DuckDB run's."""
    from pipeline.stages import score as score_stage

    runs = {}
    for engine in ("duckdb", "spark"):
        paths = dataclasses.replace(built, weekly=str(tmp_path / engine))
        runs[engine] = score_stage.run_weekly(
            params.score, params.report, paths, model_uri=str(built.model), tracking_uri="",
            experiment="", track=False, engine=engine, spark=SPARK, log=lambda m: None)
        assert not (Path(paths.weekly) / ".scratch").exists()  # nothing left behind
    engines.connect("spark", TZ, SPARK)  # back to the module's zone
    a, b = (pd.read_parquet(Path(r.folder) / score_stage.SCORES) for r in runs.values())
    assert len(a) == runs["spark"].at_risk > 1000
    pd.testing.assert_frame_equal(a, b)
    assert md5(Path(runs["duckdb"].folder) / score_stage.LIST) == md5(
        Path(runs["spark"].folder) / score_stage.LIST)


def test_the_session_is_in_the_business_time_zone(spark):
    session = spark._session
    assert session.conf.get("spark.sql.session.timeZone") == TZ
    assert session.conf.get("spark.sql.timestampType") == "TIMESTAMP_NTZ"
    [row] = session.sql("SELECT typeof(CAST(DATE'2024-06-01' AS TIMESTAMP)) AS t").collect()
    assert row.t == "timestamp_ntz"


# ------------------------------------------------------------------- hand-made boundary cases

T = "2024-06-01"
SIGNUP = "2024-01-01"


def _cases() -> tuple[list[tuple], dict[str, list[tuple]]]:
    """One customer per case (ids name them), all in one set of tables: one Spark job."""
    customers, subs, points = [], [], []
    tables: dict[str, list[tuple]] = {"usage": [], "charges": [], "tickets": [], "nps": []}

    def customer(cid, signup=SIGNUP, channel="ads", referred_by=None, periods=None,
                 pts=((T, 0, SIGNUP),)):
        customers.append((cid, signup, channel, f"R-{cid}", referred_by))
        for ps, pe, plan, fee in periods or [(signup, "2024-12-31", "basic", 100.0)]:
            subs.append((cid, ps, pe, plan, fee, "renewed"))
        points.extend((cid, t, run, start) for t, run, start in pts)

    # an event exactly at t (excluded) and exactly at t - 90 days (included)
    customer("edges", pts=((T, 0, SIGNUP), ("2024-05-31", 0, SIGNUP), ("2024-06-02", 0, SIGNUP)))
    for ts, n in (("2024-06-01 00:00:00", 1000), ("2024-05-31 23:59:59", 7),
                  ("2024-03-03 00:00:00", 5), ("2024-03-02 23:59:59", 900)):
        tables["usage"].append(("edges", ts, n))
        tables["charges"].append(("edges", ts, float(n)))
        tables["tickets"].append(("edges", ts, "billing", None))
        tables["nps"].append(("edges", ts, n % 11))
    # an empty window: events only before t - 90 and from t on; and a customer with none
    customer("empty")
    for ts in ("2024-02-01 10:00:00", "2024-06-01 00:00:00", "2024-07-01 10:00:00"):
        tables["usage"].append(("empty", ts, 3))
        tables["charges"].append(("empty", ts, 5.0))
    customer("nothing", channel="partner")  # a channel outside the vocabulary: code -1
    # a single event of each kind
    customer("single")
    tables["usage"].append(("single", "2024-05-10 12:00:00", 42))
    tables["charges"].append(("single", "2024-05-10 12:00:00", 1234.56))
    tables["tickets"].append(("single", "2024-05-10 12:00:00", "delivery", "2024-06-03 09:00:00"))
    tables["nps"].append(("single", "2024-05-10 12:00:00", 7))
    # day changes in the business time zone (UTC+03:30): 00:30 and 03:29 are the previous
    # day in UTC, 20:30 and 23:59 the next day; t's own day starts at 00:00 local
    customer("midnight", pts=((T, 0, SIGNUP), ("2024-05-31", 0, SIGNUP)))
    for ts in ("2024-05-30 20:30:00", "2024-05-30 23:59:59", "2024-05-31 00:00:00",
               "2024-05-31 00:30:00", "2024-05-31 03:29:59", "2024-05-31 03:30:00",
               "2024-05-31 20:29:59", "2024-05-31 20:30:00", "2024-05-31 23:59:59",
               "2024-06-01 00:00:00", "2024-06-01 00:30:00", "2024-06-01 03:29:59"):
        tables["usage"].append(("midnight", ts, 1))
        tables["tickets"].append(("midnight", ts, "technical", None))
        tables["nps"].append(("midnight", ts, 5))
    # a renewal on day t: the old period ends on t, the new one (another plan) starts on t
    customer("renewal", periods=[(SIGNUP, T, "basic", 100.0), (T, "2024-07-01", "pro", 250.0)],
             pts=((T, 0, SIGNUP), ("2024-05-31", 0, SIGNUP), ("2024-06-02", 0, SIGNUP)))
    # reactivated: a first run Jan-Mar, lapsed, back on 2024-04-15 (run 1) with a new block
    back = "2024-04-15"
    customer("reactivated", periods=[(SIGNUP, "2024-03-01", "basic", 100.0),
                                     (back, "2024-12-31", "pro", 250.0)],
             pts=(("2024-02-15", 0, SIGNUP), ("2024-05-01", 1, back), ("2024-08-01", 1, back)))
    for ts in ("2024-01-05 09:00:00", "2024-02-20 09:00:00", "2024-04-15 00:00:00",
               "2024-04-20 22:00:00", "2024-07-13 23:59:59", "2024-07-14 00:00:00"):
        tables["usage"].append(("reactivated", ts, 11))
        tables["charges"].append(("reactivated", ts, 99.5))
        tables["tickets"].append(("reactivated", ts, "account", ts))
    # a referral, and two NPS answers in the same second (the higher score wins)
    customer("friend", signup="2024-03-10", referred_by="R-edges",
             pts=((T, 0, "2024-03-10"),))
    tables["nps"] += [("friend", "2024-05-01 10:00:00", 4), ("friend", "2024-05-01 10:00:00", 8)]
    return points, {"customers": customers, "subscriptions": subs, **tables}


def test_boundary_cases(spark, tmp_path):
    points, tables = _cases()
    r = both(spark, write_world(tmp_path / "cases", points, tables), what="boundary cases")
    t = pd.Timestamp(T)
    # both engines agree, and on what the definitions say
    assert r.loc[("edges", t), "usage_messages"] == 12
    assert r.loc[("edges", t), "charge_topups"] == 2
    assert r.loc[("empty", t), "usage_messages"] == 0
    assert r.loc[("empty", t), "usage_days_since_last"] == 90
    assert r.loc[("single", t), "tickets_unresolved"] == 1
    assert r.loc[("single", t), "nps_last"] == 7
    # days are local: 8 sends on 2024-05-30 and 05-31 before t, the ones on 06-01 are not
    assert r.loc[("midnight", t), "usage_messages"] == 9
    assert r.loc[("midnight", t), "usage_active_days"] == 2
    assert r.loc[("midnight", pd.Timestamp("2024-05-31")), "usage_messages"] == 2
    assert r.loc[("renewal", t), "plan_code"] == 0  # the period starting on t is unknown at t
    assert r.loc[("renewal", pd.Timestamp("2024-06-02")), "plan_code"] == 1
    assert r.loc[("reactivated", pd.Timestamp("2024-08-01")), "reactivated"] == 1
    assert r.loc[("reactivated", pd.Timestamp("2024-08-01")), "f90_topups"] == 3
    assert r.loc[("friend", t), "nps_last"] == 8
    assert r.loc[("edges", t), "referrals_ever"] == 1


# ----------------------------------------------------------------------- small random worlds

BASE = dt.datetime(2024, 1, 1)
# seconds of the day, with the edges of local and UTC days over-represented
SECONDS = st.one_of(st.integers(0, 86399), st.sampled_from([0, 1, 12599, 12600, 73799, 73800,
                                                            86399]))


@st.composite
def world(draw, w: int) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """1-3 customers over about a year: periods with gaps, events around them (some before
    signup or after the last point), points in one or two runs, referrals inside the world."""
    n = draw(st.integers(1, 3))
    points, out = [], {k: [] for k in COLUMNS}

    def ts(day: int, sec: int) -> dt.datetime:
        return BASE + dt.timedelta(days=day, seconds=sec)

    for j in range(n):
        cid = f"w{w}c{j}"
        signup = draw(st.integers(0, 120))
        others = [k for k in range(n) if k != j]
        ref = draw(st.one_of(st.none(), st.sampled_from(others))) if others else None
        out["customers"].append((cid, ts(signup, 0), draw(st.sampled_from(
            ["ads", "organic", "partner"])), f"w{w}R{j}", None if ref is None else f"w{w}R{ref}"))
        start = signup
        for _ in range(draw(st.integers(0, 4))):
            length = draw(st.integers(1, 90))
            out["subscriptions"].append((cid, ts(start, 0), ts(start + length, 0),
                                         draw(st.sampled_from(["basic", "pro", "gold"])),
                                         float(draw(st.integers(0, 5000))), "renewed"))
            start += length + draw(st.sampled_from([0, 0, 3, 20]))
        events = st.tuples(st.integers(signup - 5, signup + 300), SECONDS, st.integers(0, 60))
        for day, sec, v in draw(st.lists(events, max_size=12)):
            out["usage"].append((cid, ts(day, sec), v))
        for day, sec, v in draw(st.lists(events, max_size=4)):
            out["charges"].append((cid, ts(day, sec), v * 12.34))
        for day, sec, v in draw(st.lists(events, max_size=4)):
            resolved = None if v % 3 == 0 else ts(day + v % 7, sec)
            out["tickets"].append((cid, ts(day, sec), TOPICS[v % len(TOPICS)], resolved))
        for day, sec, v in draw(st.lists(events, max_size=3)):
            out["nps"].append((cid, ts(day, sec), v % 11))
        back = draw(st.one_of(st.none(), st.integers(signup + 20, signup + 200)))
        for t in draw(st.lists(st.integers(signup + 1, signup + 320), min_size=1, max_size=4,
                               unique=True)):
            run, run_start = (1, back) if back is not None and t > back else (0, signup)
            points.append((cid, ts(t, 0), run, ts(run_start, 0)))
    return points, out


ZONES = (TZ, "Europe/Berlin", "America/Sao_Paulo", "UTC")  # two with daylight saving time


def random_worlds() -> list[tuple[list[tuple], dict[str, list[tuple]]]]:
    """N_WORLDS worlds drawn by Hypothesis (derandomized: the same ones on every run), each
    world numbered w0, w1, ... so their ids and referral codes never meet."""
    drawn = []

    @settings(max_examples=N_WORLDS, deadline=None, derandomize=True, database=None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        drawn.append(data.draw(world(len(drawn))))

    draw()
    return drawn


def test_random_worlds(spark, tmp_path):
    """The worlds in JOBS unions (one Spark job each, each in another time zone)."""
    worlds = random_worlds()
    assert len(worlds) == N_WORLDS
    per_job = -(-N_WORLDS // JOBS)
    for i in range(JOBS):
        chunk = worlds[i * per_job:(i + 1) * per_job]
        points = [p for pts, _ in chunk for p in pts]
        tables = {k: [row for _, t in chunk for row in t[k]] for k in COLUMNS}
        tz = ZONES[i % len(ZONES)]
        folder = write_world(tmp_path / f"job{i}", points, tables)
        what = f"random worlds w{i * per_job}-w{i * per_job + len(chunk) - 1} in {tz}"
        r = both(spark, folder, tz=tz, what=what)
        assert len(r) == len(points)
        assert list(r.columns[-len(FEATURES):]) == list(FEATURES)
