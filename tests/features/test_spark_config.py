"""`features.engine: spark`: its settings are checked like every param, and a machine without
PySpark or Java gets a message that says what to install (no Spark is started here)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from common.errors import UserError
from features.config import SparkConfig
from pipeline import engines
from pipeline.cli import app
from pipeline.params import ParamsError, load_params
from tests.pipeline.helpers import write_params

runner = CliRunner()


def _spark(tmp_path, **spark) -> object:
    return load_params(write_params(tmp_path, features={"engine": "spark", "spark": spark}))


def test_spark_settings_load(tmp_path):
    p = _spark(tmp_path, master="local[4]", conf={"spark.driver.memory": "4g",
                                                  "spark.sql.shuffle.partitions": 8,
                                                  "spark.sql.adaptive.enabled": True})
    assert p.features.engine == "spark" and p.features.spark.master == "local[4]"
    assert p.features.spark.settings() == {"spark.driver.memory": "4g",
                                           "spark.sql.shuffle.partitions": "8",
                                           "spark.sql.adaptive.enabled": "true"}
    default = load_params(write_params(tmp_path)).features
    assert default.engine == "duckdb" and default.spark == SparkConfig("local[2]", {})


@pytest.mark.parametrize(("spark", "needle"), [
    ({"master": "local[2]", "conf": {"spark.sql.session.timeZone": "UTC"}},
     "features.spark.conf.spark.sql.session.timeZone: is set by the features stage"),
    ({"master": "local[2]", "conf": {"spark.sql.timestampType": "TIMESTAMP_LTZ"}},
     "features.spark.conf.spark.sql.timestampType: is set by the features stage"),
    ({"master": "local[2]", "conf": {"driver.memory": "4g"}},
     "features.spark.conf: 'driver.memory' is not a Spark setting"),
    ({"master": "local[2]", "conf": {"spark.jars": ["a.jar"]}},
     "features.spark.conf.spark.jars: must be a string, number or boolean"),
    ({"master": " "}, "features.spark.master: is empty"),
    ({"master": "local[2]", "cores": 2}, "features.spark: unknown key(s) ['cores']"),
])
def test_spark_settings_out_of_range_stop_at_load(tmp_path, spark, needle):
    with pytest.raises(ParamsError) as err:
        _spark(tmp_path, **spark)
    assert needle in str(err.value)


def test_cli_flags_are_checked(tmp_path):
    params = str(write_params(tmp_path))
    result = runner.invoke(app, ["features", "--params", params, "--engine", "polars"])
    assert result.exit_code == 2 and "features.engine" in result.output
    result = runner.invoke(app, ["features", "--params", params, "--spark-master", ""])
    assert result.exit_code == 2, result.output
    assert "--spark-master: features.spark.master: is empty" in result.output
    assert "Traceback" not in result.output


def test_without_java_the_message_says_what_to_install(monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(UserError, match="no Java was found: install Java 17"):
        engines.connect("spark", "Asia/Tehran", SparkConfig())


def test_without_pyspark_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import fails
    with pytest.raises(UserError, match=r"needs PySpark: pip install 'churn\[spark\]'"):
        engines.connect("spark", "Asia/Tehran", SparkConfig())


def test_the_session_settings_are_the_stage_s_own():
    conf = engines.spark_session_conf("Asia/Tehran")
    assert conf["spark.sql.session.timeZone"] == "Asia/Tehran"
    assert conf["spark.sql.timestampType"] == "TIMESTAMP_NTZ"
    from features.config import SPARK_OWNED

    assert set(conf) == set(SPARK_OWNED)


def test_the_order_check_of_spark_s_output():
    import datetime as dt

    import pyarrow as pa

    def batch(rows):
        ids, days = zip(*rows, strict=True)
        return pa.record_batch({"customer_id": pa.array(ids, pa.int64()),
                                "t": pa.array([dt.date(2024, 1, d) for d in days])})

    last = engines._check_order(batch([(1, 1), (1, 2), (2, 1)]), ("customer_id", "t"), None)
    assert last == (2, dt.date(2024, 1, 1))
    assert engines._check_order(batch([(2, 5), (3, 1)]), ("customer_id", "t"), last)
    for rows, before in (([(1, 2), (1, 1)], None), ([(1, 1), (1, 1)], None),
                         ([(2, 1)], last)):
        with pytest.raises(RuntimeError, match="out of order"):
            engines._check_order(batch(rows), ("customer_id", "t"), before)


def test_spark_out_of_memory_is_a_setting_to_change_not_a_traceback():
    """At 50M usage rows with Spark's default 1g driver, the broadcast of a join did not fit
    (bench/spark.py): the user is told which setting to raise; other errors stay bugs."""
    import pytest

    from common.errors import UserError
    from pipeline import engines

    class Py4JJavaError(Exception):
        pass

    with pytest.raises(UserError, match="spark.driver.memory") as caught, engines.spark_memory_advice():
        raise Py4JJavaError("An error occurred while calling o123.parquet.\n: org.apache."
                            "spark.SparkException: [_LEGACY_ERROR_TEMP_2250] Not enough "
                            "memory to build and broadcast the table to all worker nodes.")
    assert "autoBroadcastJoinThreshold" in str(caught.value)
    with pytest.raises(Py4JJavaError, match="division"), engines.spark_memory_advice():
        raise Py4JJavaError("[DIVIDE_BY_ZERO] division by zero")


def test_spark_that_cannot_start_is_a_setting_to_change():
    """A master Spark cannot start with ends in a message naming the master (no traceback):
    in a fresh process, where no session exists yet."""
    import os
    import shutil
    import subprocess
    import sys

    import pytest

    if os.environ.get("CHURN_SKIP_SPARK") == "1" or not shutil.which("java"):
        pytest.skip("no Spark here (CHURN_SKIP_SPARK=1 or no Java)")
    code = ("from common.errors import UserError\n"
            "from features.config import SparkConfig\n"
            "from pipeline import engines\n"
            "try:\n"
            "    engines.connect('spark', 'UTC', SparkConfig(master='garbage'))\n"
            "except UserError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Spark could not start with master 'garbage'" in out.stdout
