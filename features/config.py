"""What an observation point is and what it sees: the `labels` and `features` sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from common.errors import check


@dataclass(frozen=True)
class LabelConfig:
    """Observation points and their labels (definitions.md: Labels and observation points)."""

    horizon_days: int  # label = churn date in [t, t + horizon)
    grace_days: int  # an unpaid period is lapsed grace_days after its end
    every_days: int  # young and ongoing points every every_days
    min_tenure_days: int  # the first young point
    early_life_days: int  # the first-N-days point (seed 003: 90)

    def __post_init__(self) -> None:
        check(self.horizon_days >= 1, "horizon_days", f"must be at least 1 day, not {self.horizon_days}")
        check(self.grace_days >= 0, "grace_days", f"must be 0 or more days, not {self.grace_days}")
        check(self.every_days >= 1, "every_days", f"must be at least 1 day, not {self.every_days}")
        check(self.min_tenure_days >= 1, "min_tenure_days",
              f"must be at least 1 day (a point needs some history), not {self.min_tenure_days}")
        check(self.early_life_days >= self.min_tenure_days, "early_life_days",
              f"{self.early_life_days} is before min_tenure_days {self.min_tenure_days}")
        # a returning customer has no point in its first grace_days days (observations.py)
        check(self.early_life_days >= self.grace_days, "early_life_days",
              f"{self.early_life_days} is before grace_days {self.grace_days}: a returning "
              "customer's early-life point would fall where its run has no point yet")


ENGINES = ("duckdb", "spark")

# Spark settings the features stage owns: they make Spark's days and timestamps DuckDB's
# (pipeline/engines.py sets them on every session), so `features.spark.conf` may not set them
SPARK_OWNED = ("spark.sql.session.timeZone", "spark.sql.timestampType",
               "spark.sql.parquet.inferTimestampNTZ.enabled", "spark.sql.ansi.enabled")


@dataclass(frozen=True)
class SparkConfig:
    """Where `engine: spark` runs: a master and any extra Spark conf."""

    # local[N] (this machine, N cores), spark://host:7077, yarn, k8s://...: a classic session
    # (needs Java 17+ here); sc://host:15002: a Spark Connect server (no JVM here)
    master: str = "local[2]"
    conf: dict[str, Any] = field(default_factory=dict)  # e.g. spark.driver.memory: 4g

    def __post_init__(self) -> None:
        check(bool(self.master.strip()), "master", "is empty: use e.g. local[2]")
        for key, value in self.conf.items():
            check(isinstance(key, str) and key.startswith("spark."), "conf",
                  f"{key!r} is not a Spark setting (they start with 'spark.')")
            check(key not in SPARK_OWNED, f"conf.{key}",
                  "is set by the features stage (the business time zone, wall-clock timestamps, "
                  "ANSI arithmetic: the same days and values as DuckDB); remove it")
            check(isinstance(value, str | int | float | bool), f"conf.{key}",
                  f"must be a string, number or boolean, not {value!r}")

    def settings(self) -> dict[str, str]:
        """The extra conf as Spark's strings (true/false, not True/False)."""
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.conf.items()}


@dataclass(frozen=True)
class FeatureConfig:
    """The trailing windows every point's features are computed over, and the engine."""

    engine: Literal["duckdb", "spark"]  # where the Ibis expressions run (the same expressions)
    window_days: int  # the trailing window [t - window, t), and the first-N-days block
    recent_days: int  # its recent part: trends (last vs first recent_days), tickets_30
    spark: SparkConfig = field(default_factory=SparkConfig)  # read when engine is spark

    def __post_init__(self) -> None:
        check(self.engine in ENGINES, "engine", f"{self.engine!r} is not one of {list(ENGINES)}")
        check(self.window_days >= 1, "window_days", f"must be at least 1 day, not {self.window_days}")
        check(self.recent_days >= 1, "recent_days", f"must be at least 1 day, not {self.recent_days}")
        check(self.recent_days <= self.window_days, "recent_days",
              f"{self.recent_days} is longer than window_days {self.window_days}: the recent part "
              "lies inside the window")
