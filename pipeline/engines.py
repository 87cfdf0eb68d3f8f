"""Where the feature expressions run: an Ibis backend whose days are the business's days.

The same Ibis expressions (features/windows.py) run on either engine; only the connection
differs. Both see the interim tables' naive timestamps as wall-clock times in the business
time zone (the interim manifest's), so a timestamp falls on the same day on both:

- DuckDB: `TIMESTAMP` is wall-clock by definition; its `TimeZone` is the business zone.
- Spark: the session time zone is the business zone, naive Parquet timestamps are read as
  `TIMESTAMP_NTZ` and Ibis's `timestamp` casts mean `TIMESTAMP_NTZ` too (Spark's default
  would be a UTC-based `TIMESTAMP_LTZ`: `unix_timestamp` and casts would then shift by the
  zone's offset), and arithmetic is ANSI (an overflow stops, as on DuckDB).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from common.errors import UserError, first_line
from features.config import ENGINES, SparkConfig


def connect(engine: str, timezone: str, spark: SparkConfig | None = None):
    """An Ibis connection with its session time zone set to the business time zone."""
    import ibis

    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql(f"SET TimeZone = '{timezone}'")
        return con
    if engine == "spark":
        return _spark(timezone, spark or SparkConfig())
    raise UserError(f"features.engine {engine!r} is not an engine: use one of {list(ENGINES)}")


def spark_session_conf(timezone: str) -> dict[str, str]:
    """The settings every Spark session of the features stage gets (features.config
    SPARK_OWNED: `features.spark.conf` cannot override them)."""
    return {
        "spark.sql.session.timeZone": timezone,
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
        "spark.sql.ansi.enabled": "true",
    }


def _spark(timezone: str, cfg: SparkConfig):
    try:
        import ibis
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError("features.engine spark needs PySpark: pip install 'churn[spark]' "
                        "(or `make install`, which installs it)") from None
    remote = cfg.master.startswith("sc://")
    if not remote and not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise UserError("features.engine spark runs Spark on a JVM and no Java was found: "
                        "install Java 17 or later (Debian: apt-get install "
                        "openjdk-17-jre-headless) or set JAVA_HOME; a Spark Connect server "
                        "(features.spark.master: sc://host:15002) needs none here")
    owned = spark_session_conf(timezone)
    # the CLI shows its own status line: no progress bars of Spark's on the same terminal, and
    # only Spark's errors (its warnings print Java stack traces before the product's message;
    # features.spark.conf can set spark.log.level: WARN again)
    defaults = {"spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR"}
    if remote:
        builder = SparkSession.builder.remote(cfg.master)
    elif os.environ.get("PYSPARK_GATEWAY_PORT"):  # under spark-submit: its --master and --conf
        builder = SparkSession.builder
    else:
        builder = SparkSession.builder.master(cfg.master).appName("churn-features")
    for key, value in {**defaults, **cfg.settings(), **owned}.items():
        builder = builder.config(key, value)
    # an existing session in this process (a test module's, a notebook's) is reused: its
    # static settings (master, memory) stay, the SQL settings above are set again below
    try:
        session = builder.getOrCreate()
        # Ibis sets the session time zone to UTC on connect; its keyword settings come after
        return ibis.pyspark.connect(session, **owned)
    except Exception as err:  # the JVM, the master or the conf: all the user's to fix
        raise UserError(
            f"Spark could not start with master {cfg.master!r} ({type(err).__name__}: "
            f"{first_line(err)[:300]}). "
            "Fix --spark-master / features.spark.master (local[N], spark://host:7077, yarn "
            "with HADOOP_CONF_DIR, k8s://... with its image settings, or sc://host:15002 with "
            "pyspark[connect]) or the settings in features.spark.conf") from None


def check_wall_clock(con, names: list[str]) -> None:
    """On Spark, every timestamp of the registered tables must be read as wall-clock time
    (TIMESTAMP_NTZ): an instant type would put events on UTC days. A no-op on DuckDB."""
    if con.name != "pyspark":
        return
    from pyspark.sql.types import TimestampType

    for name in names:
        for f in con.raw_sql(f"SELECT * FROM `{name}`").schema.fields:
            if isinstance(f.dataType, TimestampType):
                raise UserError(f"Spark read {name}.{f.name} as an instant (TIMESTAMP_LTZ), not "
                                "a wall-clock time: the interim Parquet must hold naive "
                                "timestamps (ingest writes them so)")


def write_parquet(con, expr, path: Path, keys: tuple[str, str] = ("customer_id", "t")) -> None:
    """The expression's rows, in its order (by `keys`), as one Parquet file at `path`.

    DuckDB writes the file itself. Spark computes the table and writes it as one part file (the
    sorted rows coalesced into one last partition keep their order) into a scratch folder beside
    `path`; that file is then streamed, batch by batch, into `path` by pyarrow with the order
    checked: Spark's Parquet writer lists each column's encodings in no fixed order, so two runs
    of the same rows would differ in bytes, and a stage output is byte-identical on a rerun."""
    if con.name != "pyspark":
        con.to_parquet(expr, str(path))
        return
    import pyarrow.parquet as pq

    scratch = path.with_name(f".{path.name}.spark")
    try:
        with spark_memory_advice():
            con.raw_sql(con.compile(expr)).coalesce(1).write.mode("error").parquet(str(scratch))
        parts = sorted(scratch.glob("part-*.parquet"))
        if len(parts) != 1:
            raise UserError(
                f"Spark wrote the feature table where this machine does not see it ({scratch}): "
                "on a cluster or a Spark Connect server, the paths.* folders must be on a "
                "filesystem shared by this machine, the driver and the executors, at the same "
                "path (README: features on Spark)")
        source = pq.ParquetFile(parts[0])
        with pq.ParquetWriter(path, source.schema_arrow.remove_metadata()) as out:
            last = None
            for batch in source.iter_batches(batch_size=1 << 17):
                last = _check_order(batch, keys, last)
                out.write_batch(batch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


MEMORY_SIGNS = ("OutOfMemoryError", "notEnoughMemory", "Not enough memory", "Java heap space",
                "SparkOutOfMemoryError")


@contextlib.contextmanager
def spark_memory_advice():
    """Spark running out of memory is a setting to change, not a bug: say which."""
    try:
        yield
    except Exception as err:
        if not any(sign in str(err) for sign in MEMORY_SIGNS):
            raise
        raise UserError(
            f"Spark ran out of memory computing the features ({first_line(err)[:300]}). Give it "
            "more in "
            "params.yaml, features.spark.conf: spark.driver.memory (local[N]: e.g. 8g; it is "
            "read when the JVM starts) or spark.executor.memory on a cluster; or turn off the "
            "broadcast joins with spark.sql.autoBroadcastJoinThreshold: -1") from None


def _check_order(batch, keys: tuple[str, str], last: tuple | None) -> tuple | None:
    """Rows strictly increasing by `keys`, across batches too; returns the batch's last key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0:
        return last
    a, b = (batch.column(k) for k in keys)
    if last is not None:
        a, b = (pa.concat_arrays([pa.array([v], x.type), x]) for v, x in zip(last, (a, b),
                                                                               strict=True))
    n = len(a)
    a0, a1, b0, b1 = a.slice(0, n - 1), a.slice(1), b.slice(0, n - 1), b.slice(1)
    ordered = pc.or_(pc.less(a0, a1), pc.and_(pc.equal(a0, a1), pc.less(b0, b1)))
    if n > 1 and not pc.all(ordered).as_py():
        raise RuntimeError("Spark wrote the feature table out of order: a bug, not your data")
    return a[n - 1].as_py(), b[n - 1].as_py()
