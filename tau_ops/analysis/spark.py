"""The incident questions on Spark, for fleets whose history outgrows one machine.

Install with ``pip install 'tau-ops[spark]'`` (pyspark; Spark needs a Java
17+ runtime). Read a dataset written by ``tau-ops export events`` with
:func:`read_export`, then ask the same questions as
:mod:`tau_ops.analysis.questions`; each answer has the polars answer's
columns, in the same order, with the same rows (a test checks this row for
row on a 20-member fleet).

Buckets are fixed widths counted from the Unix epoch in UTC (``15m``,
``1h``, ``1d``), as polars truncates them; calendar widths (weeks, months)
are refused. The session must use UTC (:func:`local_session` sets it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tau_ops.analysis.questions import ACTION_BY_REASON_CODE, DOMINANT_CODES, PROBLEM_CODES
from tau_ops.errors import UsageError
from tau_ops.health import ACTIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_WIDTH = re.compile(r"(\d+)(ms|s|m|h|d)")


def bucket_ms(every: str) -> int:
    """A fixed bucket width in milliseconds.

    Parameters
    ----------
    every : str
        A sum of fixed widths: digits followed by ``ms``, ``s``, ``m``, ``h`` or
        ``d`` (calendar widths such as months are refused).

    Returns
    -------
    int
        The width (ms).

    Raises
    ------
    UsageError
        Not a sum of fixed widths such as ``15m``, ``1h30m`` or ``1d``.

    Examples
    --------
    >>> bucket_ms("1h30m")
    5400000
    """
    parts = _WIDTH.findall(every)
    if not parts or "".join(n + u for n, u in parts) != every:
        raise UsageError(f"Spark buckets are fixed widths such as 15m, 1h or 1d, got {every!r}")
    total = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    if total <= 0:
        raise UsageError(f"bucket width must be positive, got {every!r}")
    return total


def local_session(app_name: str = "tau-ops", *, cores: int = 2) -> SparkSession:
    """A local Spark session in UTC, quiet, bound to loopback, with ``cores`` threads."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]").appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(max(1, cores * 2)))
        .getOrCreate()
    )


def read_export(spark: SparkSession, path: str) -> DataFrame:
    """The exported dataset as a Spark frame (``source`` and ``date`` from the partitions)."""
    return spark.read.option("basePath", path).parquet(f"{path.rstrip('/')}/source=*/date=*")


def _keys(frame: DataFrame) -> list[str]:
    return ["source"] if "source" in frame.columns else []


def _bucket(every: str) -> Any:
    from pyspark.sql import functions as F

    width = bucket_ms(every)
    return F.timestamp_millis(F.floor(F.unix_millis("timestamp") / width) * width)


def reason_code_trends(events: DataFrame, *, every: str = "1h") -> DataFrame:
    """Cycles per reason code per bucket: ``bucket``, [``source``], ``reason_code``, ``cycles``."""
    from pyspark.sql import functions as F

    keys = _keys(events)
    return (
        events.select(*keys, _bucket(every).alias("bucket"),
                      F.explode("reason_codes").alias("reason_code"))
        .where(F.col("reason_code").isNotNull())
        .groupBy("bucket", *keys, "reason_code")
        .agg(F.count(F.lit(1)).cast("long").alias("cycles"))
        .orderBy("bucket", *keys, "reason_code")
    )


def health_timeline(events: DataFrame, *, every: str = "1h") -> DataFrame:
    """Health per cycle with its bucket, the bucket's cycle count and each state's share."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = _keys(events)
    group = Window.partitionBy("bucket", *keys)
    frame = events.select(*keys, "timestamp", "health_state", "failure_streak",
                          _bucket(every).alias("bucket"))
    return frame.select(
        *keys, "timestamp", "health_state", "failure_streak", "bucket",
        F.count(F.lit(1)).over(group).cast("long").alias("bucket_cycles"),
        *[F.avg((F.col("health_state") == state).cast("double")).over(group)
          .alias(f"{state}_share") for state in ("healthy", "degraded", "failing")],
    ).orderBy(*keys, "timestamp")


def incidents(events: DataFrame) -> DataFrame:
    """Maximal runs of non-healthy cycles, with the polars answer's columns and rules."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = _keys(events)
    order = Window.partitionBy(*keys).orderBy("timestamp")
    bad = F.col("health_state") != "healthy"
    runs = (
        events.select(*keys, "timestamp", "health_state", "failure_streak", "reason_codes")
        .withColumn("bad", bad)
        .withColumn("run", F.sum(
            (F.col("bad") != F.coalesce(F.lag("bad").over(order), F.lit(False))).cast("long")
        ).over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .where(F.col("bad"))
    )
    spans = runs.groupBy(*keys, "run").agg(
        F.min("timestamp").alias("start"), F.max("timestamp").alias("end"),
        F.count(F.lit(1)).cast("long").alias("cycles"),
        F.max("health_state").alias("worst_state"),
        F.max("failure_streak").alias("peak_failure_streak"),
    )
    counted = (
        runs.select(*keys, "run", F.explode("reason_codes").alias("code"))
        .where(F.col("code").isin(list(PROBLEM_CODES)))
        .groupBy(*keys, "run", "code").agg(F.count(F.lit(1)).alias("n"))
    )
    rank = Window.partitionBy(*keys, "run").orderBy(F.col("n").desc(), F.col("code").asc())
    dominant = (
        counted.withColumn("rank", F.row_number().over(rank))
        .where(F.col("rank") <= DOMINANT_CODES)
        .groupBy(*keys, "run")
        .agg(F.sort_array(F.collect_list(F.struct("rank", "code"))).alias("ranked"))
        .select(*keys, "run", F.col("ranked.code").alias("dominant_reason_codes"))
    )
    actions = F.create_map(*[item for code, action in ACTION_BY_REASON_CODE.items()
                             for item in (F.lit(code), F.lit(action))])
    codes = F.coalesce(F.col("dominant_reason_codes"), F.array().cast("array<string>"))
    return (
        spans.join(dominant, on=[*keys, "run"], how="left")
        .select(
            *keys, "start", "end", (F.col("end") - F.col("start")).alias("duration"), "cycles",
            "worst_state", "peak_failure_streak", codes.alias("dominant_reason_codes"),
            F.when(F.col("worst_state") == "failing", F.lit(ACTIONS["failing"]))
            .otherwise(F.coalesce(actions[F.try_element_at(codes, F.lit(1))],
                                  F.lit(ACTIONS["case_processing_failed"]))).alias("action"),
        )
        .orderBy(*keys, "start")
    )
