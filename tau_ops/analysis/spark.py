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

The examples here are skipped by the doctest run (``# doctest: +SKIP``):
each needs a Spark session, which takes tens of seconds and a Java runtime to
start. ``tests/test_fleet_export_spark.py`` runs the same calls for real.
They read ``fleet-history``, a folder written by ``tau-ops export events``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tau_ops.analysis.questions import ACTION_BY_REASON_CODE, DOMINANT_CODES, PROBLEM_CODES
from tau_ops.errors import UsageError
from tau_ops.health import ACTIONS
from tau_ops.models import REASON_CODES

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
    """A local Spark session in UTC, quiet, bound to loopback, with ``cores`` threads.

    Settings: master ``local[cores]``, ``spark.sql.session.timeZone`` UTC (the
    buckets need it), driver bound to 127.0.0.1, no web UI, ``2 * cores``
    shuffle partitions. An existing session is returned as it is
    (``getOrCreate``).

    Parameters
    ----------
    app_name : str, default "tau-ops"
        The Spark application name.
    cores : int, default 2
        Worker threads of the local master.

    Returns
    -------
    pyspark.sql.SparkSession
        The session.

    Raises
    ------
    ModuleNotFoundError
        pyspark is not installed (``pip install 'tau-ops[spark]'``).
    pyspark.errors.PySparkRuntimeError
        The JVM cannot start (no Java 17+ runtime).

    Examples
    --------
    A Spark session is needed, so this example is skipped by the doctest run.

    >>> spark = local_session(cores=2)  # doctest: +SKIP
    >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
    'UTC'
    """
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


_INFER_PARTITION_TYPES = "spark.sql.sources.partitionColumnTypeInference.enabled"


def read_export(spark: SparkSession, path: str) -> DataFrame:
    """The exported dataset as a Spark frame (``source`` and ``date`` from the partitions).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A session in UTC (:func:`local_session`, or a cluster's).
    path : str
        The export destination (``tau-ops export events --to``): a local
        folder or a URI Spark reads (``s3a://``, ``gs://``...).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per cycle: ``timestamp`` (timestamp, UTC, ms precision),
        ``health_state``, ``health_reason`` (string), ``reason_codes``
        (array<string>), the counters of SPEC section 3 plus
        ``backlog_cases``, ``failure_streak`` and ``cycle_duration_ms`` (ms)
        as int, then ``source`` (string) and ``date`` (date, UTC) from the
        partition folders. Their types are never inferred from the values
        (a source named ``007`` stays the string ``"007"``): the session's
        ``spark.sql.sources.partitionColumnTypeInference.enabled`` is off for
        this read and restored after it.

    Raises
    ------
    pyspark.errors.AnalysisException
        ``path`` holds no exported partition.

    Examples
    --------
    A Spark session is needed, so this example is skipped by the doctest run.

    >>> events = read_export(local_session(), "fleet-history")  # doctest: +SKIP
    >>> events.columns[:4], events.columns[-2:]  # doctest: +SKIP
    (['timestamp', 'health_state', 'health_reason', 'reason_codes'], ['source', 'date'])
    """
    from pyspark.sql import functions as F

    # Partition values are never inferred (a source named 007 would read as the number 7):
    # they are read as strings for this one read, then ``date`` is cast to a date.
    previous = spark.conf.get(_INFER_PARTITION_TYPES, None)
    spark.conf.set(_INFER_PARTITION_TYPES, "false")
    try:
        frame = spark.read.option("basePath", path).parquet(f"{path.rstrip('/')}/source=*/date=*")
    finally:
        if previous is None:
            spark.conf.unset(_INFER_PARTITION_TYPES)
        else:
            spark.conf.set(_INFER_PARTITION_TYPES, previous)
    return frame.withColumn("date", F.to_date("date", "yyyy-MM-dd"))


def _keys(frame: DataFrame) -> list[str]:
    return ["source"] if "source" in frame.columns else []


def _bucket(every: str) -> Any:
    from pyspark.sql import functions as F

    width = bucket_ms(every)
    return F.timestamp_millis(F.floor(F.unix_millis("timestamp") / width) * width)


def _contract_order(column: str) -> Any:
    """A reason code's position in the contract's list (polars orders its Enum so)."""
    from pyspark.sql import functions as F

    return F.array_position(F.array(*[F.lit(c) for c in REASON_CODES]), F.col(column))


def reason_code_trends(events: DataFrame, *, every: str = "1h") -> DataFrame:
    """Cycles per reason code per bucket, as :func:`tau_ops.analysis.reason_code_trends`.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        :func:`read_export`'s frame (a ``source`` column splits the answer
        per source).
    every : str, default "1h"
        Bucket width: a sum of fixed widths (``15m``, ``1h30m``, ``1d``),
        counted from the Unix epoch in UTC.

    Returns
    -------
    pyspark.sql.DataFrame
        ``bucket`` (timestamp, start of the bucket), ``source`` (string,
        when the input has it), ``reason_code`` (string), ``cycles`` (bigint:
        cycles in the bucket that reported the code, a code listed twice in
        one cycle counting once); ordered by bucket, source, and reason
        code in the contract's order.

    Raises
    ------
    UsageError
        ``every`` is not a sum of fixed widths (see :func:`bucket_ms`).

    Examples
    --------
    A Spark session is needed, so this example is skipped by the doctest run.

    >>> events = read_export(local_session(), "fleet-history")  # doctest: +SKIP
    >>> reason_code_trends(events, every="15m").columns  # doctest: +SKIP
    ['bucket', 'source', 'reason_code', 'cycles']
    """
    from pyspark.sql import functions as F

    keys = _keys(events)
    return (
        events.select(*keys, _bucket(every).alias("bucket"),
                      F.explode(F.array_distinct("reason_codes")).alias("reason_code"))
        .where(F.col("reason_code").isNotNull())
        .groupBy("bucket", *keys, "reason_code")
        .agg(F.count(F.lit(1)).cast("long").alias("cycles"))
        .orderBy("bucket", *keys, _contract_order("reason_code"))
    )


def health_timeline(events: DataFrame, *, every: str = "1h") -> DataFrame:
    """Health per cycle with its bucket, the bucket's cycle count and each state's share.

    The Spark twin of :func:`tau_ops.analysis.health_timeline`.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        :func:`read_export`'s frame.
    every : str, default "1h"
        Bucket width: a sum of fixed widths, counted from the Unix epoch in UTC.

    Returns
    -------
    pyspark.sql.DataFrame
        ``source`` (string, when the input has it), ``timestamp``
        (timestamp), ``health_state`` (string), ``failure_streak`` (int),
        ``bucket`` (timestamp), ``bucket_cycles`` (bigint: cycles in that
        bucket and source), ``healthy_share``, ``degraded_share``,
        ``failing_share`` (double, 0..1, share of the bucket's cycles); one
        row per cycle, ordered by source and time.

    Raises
    ------
    UsageError
        ``every`` is not a sum of fixed widths (see :func:`bucket_ms`).

    Examples
    --------
    A Spark session is needed, so this example is skipped by the doctest run.

    >>> events = read_export(local_session(), "fleet-history")  # doctest: +SKIP
    >>> health_timeline(events).columns[-4:]  # doctest: +SKIP
    ['bucket_cycles', 'healthy_share', 'degraded_share', 'failing_share']
    """
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
    """Maximal runs of non-healthy cycles, with the polars answer's columns and rules.

    The Spark twin of :func:`tau_ops.analysis.incidents`: per source, each
    unbroken run of cycles whose ``health_state`` is not ``healthy`` is one
    incident.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        :func:`read_export`'s frame.

    Returns
    -------
    pyspark.sql.DataFrame
        ``source`` (string, when the input has it), ``start`` and ``end``
        (timestamp: first and last non-healthy cycle), ``duration`` (interval
        day to second, ``end - start``), ``cycles`` (bigint),
        ``worst_state`` (string: failing or degraded), ``peak_failure_streak``
        (int), ``dominant_reason_codes`` (array<string>: the most frequent
        problem codes, at most three, most frequent first) and ``action``
        (string: the runbook action for the worst state or the top code);
        ordered by source and start.

    Examples
    --------
    A Spark session is needed, so this example is skipped by the doctest run.

    >>> events = read_export(local_session(), "fleet-history")  # doctest: +SKIP
    >>> for field in incidents(events).schema:  # doctest: +SKIP
    ...     print(field.name, field.dataType.simpleString())
    source string
    start timestamp
    end timestamp
    duration interval day to second
    cycles bigint
    worst_state string
    peak_failure_streak int
    dominant_reason_codes array<string>
    action string
    """
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
        runs.select(*keys, "run", F.explode(F.array_distinct("reason_codes")).alias("code"))
        .where(F.col("code").isin(list(PROBLEM_CODES)))
        .groupBy(*keys, "run", "code").agg(F.count(F.lit(1)).alias("n"))
    )
    rank = Window.partitionBy(*keys, "run").orderBy(F.col("n").desc(), _contract_order("code"))
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
