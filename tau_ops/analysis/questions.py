"""Incident questions as pure functions of an events frame (frame in, frame out).

Each function takes the frame of :func:`tau_ops.analysis.load_events` (eager
or lazy; the result has the same kind) and answers one question an operator
asks during an incident. With a fleet frame (a ``source`` column) every answer
is split per source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import polars as pl
from pydantic import BaseModel, Field

from tau_ops.analysis._parse import REASON_CODE
from tau_ops.errors import UsageError
from tau_ops.health import ACTIONS
from tau_ops.models import HEALTH_STATES, REASON_CODES
from tau_ops.timefmt import plural

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

PROBLEM_CODES: tuple[str, ...] = tuple(
    c for c in REASON_CODES[:6] if c != "duplicate_cases_skipped")
"""Reason codes that point at a problem: the runbook's troubleshooting symptoms.

Duplicates skipped, rollouts applied and healthy cycles are not problems.
"""
DEGRADED_ORDER: tuple[str, ...] = (
    "case_processing_failed", "malformed_inputs_observed", "retry_attempted",
    "retryable_failures_observed")
"""Which degraded symptom's action comes first (as :func:`tau_ops.health.classify` orders them)."""

ACTION_BY_REASON_CODE: dict[str, str] = {
    code: ACTIONS.get(code, ACTIONS["case_processing_failed"]) for code in PROBLEM_CODES
}
"""The runbook's troubleshooting action for each problem reason code."""

DOMINANT_CODES = 3


NO_HISTORY_ACTION = "none from the event history (the rollout gate decides promotion)"
"""What the event history asks for when it shows no problem: never a promotion verdict,
which only the rollout gate gives (it also weighs pause, freshness, clock skew)."""


def troubleshooting_action(reason_code: str) -> str:
    """The runbook action for a problem reason code; :data:`NO_HISTORY_ACTION` otherwise.

    Parameters
    ----------
    reason_code : str
        A cycle reason code (``retry_attempted``, ``healthy_cycle``...).

    Returns
    -------
    str
        The action, one line.

    Examples
    --------
    >>> troubleshooting_action("retry_attempted")
    'verify retryable failure simulation and retry policy settings'
    """
    return ACTION_BY_REASON_CODE.get(reason_code, NO_HISTORY_ACTION)


def _keys(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    return ["source"] if "source" in frame.collect_schema().names() else []


_EVERY = re.compile(r"(\d+(ns|us|ms|s|m|h|d|w|mo|q|y))+")


def check_every(every: str) -> str:
    """Refuse a bucket width polars cannot read (``15m``, ``1h``, ``1d`` are fine).

    Parameters
    ----------
    every : str
        A polars duration string.

    Returns
    -------
    str
        ``every``, unchanged.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> check_every("15m")
    '15m'
    >>> check_every("soon")
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: bucket width must look like 15m, 1h or 1d, got 'soon'
    """
    if not _EVERY.fullmatch(every) or not any(ch in "123456789" for ch in every):
        raise UsageError(f"bucket width must look like 15m, 1h or 1d, got {every!r}")
    return every


def _cycle_codes() -> pl.Expr:
    """Each cycle's distinct reason codes, as the contract's Enum (ties rank in its order).

    A code listed twice in one cycle counts once, in every answer; an exported
    frame's codes (strings) rank as a loaded frame's do.
    """
    return pl.col("reason_codes").list.unique().cast(pl.List(REASON_CODE), strict=False)


def _over(expr: pl.Expr, keys: list[str]) -> pl.Expr:
    return expr.over(keys) if keys else expr


def reason_code_trends(events: Frame, *, every: str = "1h") -> Frame:
    """Cycles per reason code per time bucket: ``bucket``, ``reason_code``, ``cycles``.

    ``cycles`` counts cycles that reported the code (a code listed twice in one
    cycle counts once).

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.
    every : str
        Bucket width as polars reads it (``15m``, ``1h``, ``1d``; default ``1h``);
        buckets start at whole multiples of it, in UTC.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        (same kind as ``events``) sorted by bucket: ``bucket`` (Datetime, UTC,
        bucket start), [``source``], ``reason_code`` (Enum of reason codes) and
        ``cycles`` (Int64, count of cycles).

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> [row[1:] for row in reason_code_trends(events, every="1h").rows()]
    [('retry_attempted', 1), ('case_processing_failed', 1), ('cloud_rollout_applied', 1), \
('healthy_cycle', 1)]
    """
    if isinstance(events, pl.DataFrame):  # one lazy query: polars plans the whole chain
        return reason_code_trends(events.lazy(), every=every).collect()
    keys: list[str] = _keys(events)
    # Cycles are counted per distinct list of codes first (a log holds few), so the
    # per-cycle dedupe and the explode run on that small frame, not on every cycle.
    return (
        events.group_by(pl.col("timestamp").dt.truncate(check_every(every)).alias("bucket"),
                        *keys, "reason_codes")
        .agg(pl.len().alias("cycles"))
        .select("bucket", *keys, _cycle_codes().alias("reason_code"), "cycles")
        .explode("reason_code")
        .drop_nulls("reason_code")
        .group_by("bucket", *keys, "reason_code")
        .agg(pl.col("cycles").sum().cast(pl.Int64))
        .sort("bucket", *keys, "reason_code")
    )


def health_timeline(events: Frame, *, every: str = "1h") -> Frame:
    """Health per cycle, with its bucket and the share of each state in that bucket.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.
    every : str
        Bucket width as polars reads it (``15m``, ``1h``, ``1d``; default ``1h``);
        buckets start at whole multiples of it, in UTC.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        One row per cycle, oldest first: [``source``], ``timestamp`` (Datetime,
        UTC), ``health_state`` (Enum), ``failure_streak`` (Int32, cycles),
        ``bucket`` (Datetime, UTC), ``bucket_cycles`` (Int64, cycles in the
        bucket) and ``healthy_share``, ``degraded_share``, ``failing_share``
        (Float64, 0..1 of the bucket's cycles).

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> health_timeline(events, every="20m").select("bucket_cycles", "degraded_share").rows()
    [(2, 0.5), (2, 0.5), (2, 0.5), (2, 0.5)]
    """
    if isinstance(events, pl.DataFrame):  # one lazy query: polars plans the whole chain
        return health_timeline(events.lazy(), every=every).collect()
    keys: list[str] = _keys(events)
    bucket = pl.col("timestamp").dt.truncate(check_every(every)).alias("bucket")
    group = ["bucket", *keys]
    return (
        events.select(*keys, "timestamp", "health_state", "failure_streak", bucket)
        .sort(*keys, "timestamp", maintain_order=True)
        .with_columns(
            pl.len().over(group).cast(pl.Int64).alias("bucket_cycles"),
            *[
                (pl.col("health_state") == state).mean().over(group).alias(f"{state}_share")
                for state in ("healthy", "degraded", "failing")
            ],
        )
    )


def health_shares(events: Frame, *, every: str = "1h") -> Frame:
    """Per bucket and state: ``cycles`` and ``share`` of the bucket's cycles (for charts).

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.
    every : str
        Bucket width as polars reads it (``15m``, ``1h``, ``1d``; default ``1h``);
        buckets start at whole multiples of it, in UTC.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        Sorted by bucket and state: ``bucket`` (Datetime, UTC), [``source``],
        ``health_state`` (Enum), ``cycles`` (Int64) and ``share`` (Float64,
        0..1 of the bucket's cycles); states with no cycle have no row.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> health_shares(events).select("health_state", "cycles", "share").rows()
    [('degraded', 2, 0.5), ('healthy', 2, 0.5)]
    """
    if isinstance(events, pl.DataFrame):  # one lazy query: polars plans the whole chain
        return health_shares(events.lazy(), every=every).collect()
    keys: list[str] = _keys(events)
    counted = (
        events.select(*keys, pl.col("timestamp").dt.truncate(check_every(every)).alias("bucket"),
                      "health_state")
        .group_by("bucket", *keys, "health_state")
        .agg(pl.len().cast(pl.Int64).alias("cycles"))
    )
    return counted.with_columns(
        (pl.col("cycles") / pl.col("cycles").sum().over("bucket", *keys)).alias("share")
    ).sort("bucket", *keys, "health_state")


def incidents(events: Frame) -> Frame:
    """Maximal runs of non-healthy cycles, oldest first.

    Columns: ``start``/``end`` (first and last non-healthy cycle), ``duration``,
    ``cycles``, ``worst_state``, ``peak_failure_streak``, ``dominant_reason_codes``
    (the most frequent problem codes, at most three, most frequent first) and
    ``action`` (the runbook action for the worst state or the top code).

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        One row per incident: [``source``], ``start``, ``end`` (Datetime, UTC),
        ``duration`` (Duration, ms), ``cycles`` (Int64), ``worst_state`` (Enum),
        ``peak_failure_streak`` (Int32, cycles), ``dominant_reason_codes``
        (List of Enum) and ``action`` (String).

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> incidents(events).select("cycles", "worst_state", "dominant_reason_codes").rows()
    [(2, 'degraded', ['retry_attempted', 'case_processing_failed'])]
    """
    if isinstance(events, pl.DataFrame):  # one lazy query: polars plans the whole chain
        return incidents(events.lazy()).collect()
    keys: list[str] = _keys(events)
    bad = pl.col("health_state") != "healthy"
    runs = (
        events.select(*keys, "timestamp", "health_state", "failure_streak", "reason_codes")
        .sort(*keys, "timestamp", maintain_order=True)
        .with_columns(
            _over((bad != _over(bad.shift(1), keys).fill_null(False)).cum_sum(), keys)
            .alias("run"),
        )
        .filter(bad)
    )
    spans = runs.group_by(*keys, "run").agg(
        pl.col("timestamp").min().alias("start"),
        pl.col("timestamp").max().alias("end"),
        pl.len().cast(pl.Int64).alias("cycles"),
        pl.col("health_state").max().alias("worst_state"),
        pl.col("failure_streak").max().alias("peak_failure_streak"),
    )
    dominant = (
        runs.select(*keys, "run", _cycle_codes().alias("code"))
        .explode("code")
        .filter(pl.col("code").is_in(PROBLEM_CODES))
        .group_by(*keys, "run", "code")
        .agg(pl.len().alias("n"))
        .sort(*keys, "run", pl.col("n"), pl.col("code").to_physical(),
              descending=[False] * len(keys) + [False, True, False])
        .group_by(*keys, "run", maintain_order=True)
        .agg(pl.col("code").head(DOMINANT_CODES).alias("dominant_reason_codes"))
    )
    top = pl.col("dominant_reason_codes").list.first().cast(pl.String)
    return (
        spans.join(dominant, on=[*keys, "run"], how="left")
        .with_columns(
            (pl.col("end") - pl.col("start")).alias("duration"),
            pl.col("dominant_reason_codes").fill_null(pl.lit([], dtype=pl.List(REASON_CODE))),
            pl.when(pl.col("worst_state") == "failing").then(pl.lit(ACTIONS["failing"]))
            .otherwise(top.replace_strict(ACTION_BY_REASON_CODE, default=ACTIONS[
                "case_processing_failed"])).alias("action"),
        )
        .sort(*keys, "start")
        .select(*keys, "start", "end", "duration", "cycles", "worst_state",
                "peak_failure_streak", "dominant_reason_codes", "action")
    )


def backlog_trend(events: Frame, *, every: str = "1h") -> Frame:
    """Queue backlog per bucket: ``cycles``, ``backlog_last``, ``backlog_max``,
    ``backlog_mean`` and ``change`` (``backlog_last`` minus the previous bucket's).

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.
    every : str
        Bucket width as polars reads it (``15m``, ``1h``, ``1d``; default ``1h``);
        buckets start at whole multiples of it, in UTC.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        Sorted by bucket: ``bucket`` (Datetime, UTC), [``source``], ``cycles``
        (Int64), ``backlog_last``, ``backlog_max`` (Int32, cases),
        ``backlog_mean`` (Float64, cases) and ``change`` (Int32, cases; 0 for
        the first bucket).

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> backlog_trend(events, every="20m").drop("bucket").rows()
    [(2, 2, 2, 1.0, 0), (2, 0, 5, 2.5, -2)]
    """
    if isinstance(events, pl.DataFrame):  # one lazy query: polars plans the whole chain
        return backlog_trend(events.lazy(), every=every).collect()
    keys: list[str] = _keys(events)
    return (
        events.select(*keys, "timestamp", "backlog_cases")
        .sort(*keys, "timestamp", maintain_order=True)
        .group_by(pl.col("timestamp").dt.truncate(check_every(every)).alias("bucket"), *keys,
                  maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("cycles"),
            pl.col("backlog_cases").last().alias("backlog_last"),
            pl.col("backlog_cases").max().alias("backlog_max"),
            pl.col("backlog_cases").mean().alias("backlog_mean"),
        )
        .sort(*keys, "bucket")
        .with_columns(
            _over(pl.col("backlog_last").diff(), keys).fill_null(0).alias("change")
        )
        .sort("bucket", *keys)
    )


class EventsSummary(BaseModel):
    """The posture of one log in a few numbers, and as one line (:attr:`line`).

    Built by :func:`summary`; times are timezone-aware UTC datetimes.

    Examples
    --------
    >>> EventsSummary(cycles=0, first=None, last=None, health_state=None, failure_streak=0,
    ...               backlog_cases=0, healthy_cycles=0, degraded_cycles=0, failing_cycles=0,
    ...               incidents=0, non_healthy_since=None, top_reason_codes=[],
    ...               action="run a cycle").line
    'no cycles recorded'
    """

    cycles: int = Field(description="Cycles in the log.")
    first: datetime | None = Field(
        description="Time of the first cycle (UTC); null when there is none."
    )
    last: datetime | None = Field(
        description="Time of the last cycle (UTC); null when there is none."
    )
    health_state: str | None = Field(
        description="Health after the last cycle; null when there is none."
    )
    failure_streak: int = Field(description="``failure_streak`` of the last cycle.")
    backlog_cases: int = Field(description="Cases left queued after the last cycle.")
    healthy_cycles: int = Field(description="Cycles that ended ``healthy``.")
    degraded_cycles: int = Field(description="Cycles that ended ``degraded``.")
    failing_cycles: int = Field(description="Cycles that ended ``failing``.")
    incidents: int = Field(
        description="Runs of consecutive non-healthy cycles (see ``incidents``)."
    )
    non_healthy_since: datetime | None = Field(
        description="Start of the ongoing incident (UTC); null when the last cycle is healthy."
    )
    top_reason_codes: list[str] = Field(
        description=("The most frequent problem reason codes (three, plus ties), most frequent "
                     "first.")
    )
    action: str = Field(
        description="The runbook action the history asks for (never a promotion verdict)."
    )
    by_source: dict[str, EventsSummary] = Field(
        default={},
        description="For a fleet frame: the posture of each source on its own (empty otherwise)."
    )

    @property
    def section_lines(self) -> list[str]:
        """One line per source for a fleet (``source: line``), else just :attr:`line`."""
        if not self.by_source:
            return [self.line]
        return [f"{name}: {part.line}" for name, part in self.by_source.items()]

    @property
    def line(self) -> str:
        """One line an operator can paste into a ticket."""
        if self.cycles == 0:
            return "no cycles recorded"
        since = (
            f" since {self.non_healthy_since:%Y-%m-%d %H:%M:%S} UTC"
            if self.non_healthy_since is not None else ""
        )
        codes = ",".join(self.top_reason_codes) or "none"
        return (
            f"{self.health_state}{since}: {plural(self.cycles, 'cycle')} "
            f"{self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M} UTC, "
            f"healthy={self.healthy_cycles} degraded={self.degraded_cycles} "
            f"failing={self.failing_cycles}, incidents={self.incidents}, "
            f"failure_streak={self.failure_streak} backlog={self.backlog_cases}, "
            f"top problem codes: {codes}"
        )


def summary(events: pl.DataFrame | pl.LazyFrame) -> EventsSummary:
    """The posture of a log: last state, since when it is not healthy, what dominates.

    With a fleet frame (a ``source`` column) the fields describe all sources
    together and :attr:`EventsSummary.by_source` holds each source's own
    posture, in the order the sources were given.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (collected here).

    Returns
    -------
    EventsSummary
        Counts of cycles per state, incidents, last streak and backlog, the
        top problem codes and the history's action.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> posture = summary(events)
    >>> posture.cycles, posture.incidents, posture.top_reason_codes
    (4, 1, ['retry_attempted', 'case_processing_failed'])
    """
    frame = events.lazy().sort("timestamp", maintain_order=True).collect()
    if "source" in frame.columns:
        names = _source_names(frame)
        merged = _summary(frame.drop("source"))
        return merged.model_copy(update={"by_source": {
            name: _summary(frame.filter(pl.col("source").cast(pl.String) == name).drop("source"))
            for name in names}})
    return _summary(frame)


def _source_names(frame: pl.DataFrame) -> list[str]:
    dtype = frame.schema["source"]
    if isinstance(dtype, pl.Enum):
        return [str(c) for c in dtype.categories.to_list()]
    return [str(v) for v in frame.get_column("source").unique(maintain_order=True).to_list()]


def _summary(frame: pl.DataFrame) -> EventsSummary:
    if frame.height == 0:
        return EventsSummary(
            cycles=0, first=None, last=None, health_state=None, failure_streak=0,
            backlog_cases=0, healthy_cycles=0, degraded_cycles=0, failing_cycles=0,
            incidents=0, non_healthy_since=None, top_reason_codes=[], action=ACTIONS["no_cycle"],
        )
    last = frame.row(-1, named=True)
    counts = dict(frame.get_column("health_state").value_counts().iter_rows())
    runs = incidents(frame.drop("source", strict=False))
    ongoing = runs.height > 0 and runs.get_column("end")[-1] == last["timestamp"]
    ranked = (
        frame.select(_cycle_codes().explode().alias("code"))
        .filter(pl.col("code").is_in(PROBLEM_CODES))
        .group_by("code").agg(pl.len().alias("n"))
        .sort(pl.col("n"), pl.col("code").to_physical(), descending=[True, False])
    )
    # the top DOMINANT_CODES counts, every code tied with the last of them included
    cutoff = ranked.get_column("n").head(DOMINANT_CODES).min() if ranked.height else 0
    codes = ranked.filter(pl.col("n") >= cutoff).get_column("code").cast(pl.String).to_list()
    if last["health_state"] == "failing":
        action = ACTIONS["failing"]
    elif last["health_state"] == "degraded":
        own = [c for c in DEGRADED_ORDER if c in last["reason_codes"]]
        action = troubleshooting_action(own[0]) if own else ACTIONS["case_processing_failed"]
    else:
        action = NO_HISTORY_ACTION
    return EventsSummary(
        cycles=frame.height,
        first=frame.get_column("timestamp")[0],
        last=last["timestamp"],
        health_state=str(last["health_state"]),
        failure_streak=int(last["failure_streak"]),
        backlog_cases=int(last["backlog_cases"]),
        healthy_cycles=int(counts.get("healthy", 0)),
        degraded_cycles=int(counts.get("degraded", 0)),
        failing_cycles=int(counts.get("failing", 0)),
        incidents=runs.height,
        non_healthy_since=runs.get_column("start")[-1] if ongoing else None,
        top_reason_codes=codes,
        action=action,
    )




def select_events(
    events: Frame,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    health_states: Sequence[str] = HEALTH_STATES,
    reason_codes: Sequence[str] = (),
) -> Frame:
    """Cycles in ``[start, end]`` whose health is one of ``health_states`` and that carry
    any of ``reason_codes`` (all cycles when none is given).

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        An events frame (:func:`~tau_ops.analysis.load_events` or
        :func:`~tau_ops.analysis.scan_events`); a ``source`` column, when present,
        keeps the sources apart.
    start, end : datetime, optional
        Bounds on ``timestamp``, inclusive (timezone-aware, UTC); none by default.
    health_states : sequence of str
        States to keep (default all three).
    reason_codes : sequence of str
        Keep cycles carrying any of these codes (default: no filter).

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        The matching rows of ``events``, same columns.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> events = pl.DataFrame({
    ...     "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (0, 10, 20, 30)],
    ...     "health_state": ["healthy", "degraded", "degraded", "healthy"],
    ...     "reason_codes": [["healthy_cycle"], ["retry_attempted"],
    ...                      ["case_processing_failed"], ["cloud_rollout_applied"]],
    ...     "failure_streak": [0, 0, 1, 0], "backlog_cases": [0, 2, 5, 0]})
    >>> select_events(events, health_states=["degraded"], reason_codes=["retry_attempted"]).height
    1
    """
    keep = pl.col("health_state").cast(pl.String).is_in(list(health_states))
    if start is not None:
        keep &= pl.col("timestamp") >= start
    if end is not None:
        keep &= pl.col("timestamp") <= end
    if reason_codes:
        keep &= pl.col("reason_codes").list.eval(
            pl.element().cast(pl.String).is_in(list(reason_codes))).list.any()
    return events.filter(keep)
