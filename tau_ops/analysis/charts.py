"""Vega-Lite charts of an events frame: reason-code trend, health timeline, streak and backlog.

Each chart is built here once, as a plain Vega-Lite spec (a ``dict``) with its
data inline: the ``*_spec`` functions return it, the report embeds it as is
(rendered in the browser by the bundled Vega), and the ``*_chart`` functions of
:mod:`tau_ops.analysis._altair` turn it into an altair chart for notebook users
(altair is imported only then).
Times are epoch milliseconds, which Vega-Lite reads as instants: no time zone is
guessed anywhere, and every axis and tooltip formats them in UTC.

Each chart aggregates per time bucket before plotting, so its embedded data
stays small whatever the log's size; :func:`auto_every` picks a bucket width
that keeps a chart to at most :data:`MAX_BUCKETS` buckets.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from tau_ops.analysis import questions
from tau_ops.analysis._vega import VEGA_LITE_SCHEMA
from tau_ops.models import REASON_CODES

if TYPE_CHECKING:
    import altair as alt

Spec = dict[str, Any]
"""A Vega-Lite spec as JSON-ready Python values."""

STATE_COLORS = {"healthy": "#2ca02c", "degraded": "#ff7f0e", "failing": "#d62728"}
BUCKET_WIDTHS: tuple[tuple[str, timedelta], ...] = (
    ("1m", timedelta(minutes=1)),
    ("5m", timedelta(minutes=5)),
    ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("6h", timedelta(hours=6)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)
MAX_BUCKETS = 120
"""Most buckets :func:`auto_every` puts on a chart (bars stay at least 6 px wide)."""
WIDTH = 720
TIME_TITLE = "time (UTC)"
TIME_LABELS = (
    "datum.index == 0 || (utchours(datum.value) == 0 && utcminutes(datum.value) == 0)"
    " ? [utcFormat(datum.value, '%H:%M'), utcFormat(datum.value, '%Y-%m-%d')]"
    " : utcFormat(datum.value, '%H:%M')"
)
"""Axis labels: 24-hour UTC times, with the date under the first tick and each midnight."""
TOOLTIP_TIME = "%Y-%m-%d %H:%M"


def auto_every(events: pl.DataFrame, *, max_buckets: int = MAX_BUCKETS) -> str:
    """The narrowest bucket width giving at most ``max_buckets`` buckets over the log.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame.
    max_buckets : int
        Most buckets allowed.

    Returns
    -------
    str
        A polars duration (``1m`` ... ``30d``); ``1h`` for fewer than two cycles.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> auto_every(events)
    '1h'
    """
    if events.height < 2:
        return "1h"
    span_ms = events.select(
        (pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_milliseconds()
    ).item()
    for name, width in BUCKET_WIDTHS:
        if span_ms / (width.total_seconds() * 1000) <= max_buckets:
            return name
    return BUCKET_WIDTHS[-1][0]


def time_x(field: str = "bucket") -> Spec:
    """The shared time axis: UTC scale, 24-hour labels, dates where the day changes.

    Parameters
    ----------
    field : str
        The column holding the bucket start (epoch milliseconds).

    Returns
    -------
    dict
        A Vega-Lite ``x`` encoding.
    """
    return {
        "field": field, "type": "temporal", "title": TIME_TITLE, "scale": {"type": "utc"},
        "axis": {"labelExpr": TIME_LABELS, "labelOverlap": "greedy", "labelSeparation": 12,
                 "tickCount": max(2, WIDTH // 110), "labelFlush": False, "grid": False},
    }


def _time_tip(field: str, title: str | None = None) -> Spec:
    tip: Spec = {"field": field, "type": "temporal", "format": TOOLTIP_TIME, "formatType": "utc"}
    return tip | ({"title": title} if title else {})


def _values(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: datetimes as epoch milliseconds, categories as strings."""
    return frame.with_columns(
        pl.col(pl.Datetime).dt.epoch("ms"), pl.col(pl.Categorical, pl.Enum).cast(pl.String),
    ).to_dicts()


def _with_end(frame: pl.DataFrame, every: str) -> pl.DataFrame:
    return frame.with_columns(pl.col("bucket").dt.offset_by(every).alias("bucket_end"))


def _title(text: str, every: str, units: str) -> Spec:
    return {"text": text, "subtitle": f"{every} buckets, UTC; {units}", "anchor": "start"}


def _count_ticks(top: object) -> list[int]:
    peak = max(1, int(top)) if isinstance(top, int | float) else 1
    step = -(-peak // 5)
    return list(range(0, peak + step, step))


def _count_y(field: str, title: str, top: object) -> Spec:
    """A count axis from 0 with whole-number ticks only (at most six)."""
    ticks = _count_ticks(top)
    return {"field": field, "type": "quantitative",
            "axis": {"title": title, "values": ticks, "format": "d"},
            "scale": {"domain": [0, ticks[-1]], "nice": False}}


def reason_code_trend_spec(events: pl.DataFrame, *, every: str = "1h") -> Spec:
    """Cycles that reported each reason code, per bucket: one row of bars per code present.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (a ``source`` column is ignored: chart one source at a time).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    dict
        A Vega-Lite facet spec. Bars as wide as their bucket; y = cycles (whole
        numbers); rows only for codes present, labelled in full, in SPEC order.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> spec = reason_code_trend_spec(events, every="1h")
    >>> spec["facet"]["row"]["sort"]
    ['retry_attempted']
    """
    every = questions.check_every(every)
    trends = _with_end(
        questions.reason_code_trends(events.drop("source", strict=False), every=every)
        .with_columns(pl.col("reason_code").cast(pl.String)), every)
    present = [code for code in REASON_CODES if code in set(trends["reason_code"].to_list())]
    top = trends["cycles"].max()
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "data": {"values": _values(trends)},
        "facet": {"row": {
            "field": "reason_code", "type": "nominal", "sort": present, "title": None,
            "header": {"labelAngle": 0, "labelAlign": "left", "labelOrient": "top",
                       "labelAnchor": "start", "labelLimit": 0, "labelFontSize": 12}}},
        "spacing": 6,
        "spec": {
            "mark": {"type": "bar", "color": "#4c78a8"},
            "encoding": {
                "x": time_x(), "x2": {"field": "bucket_end"},
                "y": _count_y("cycles", "cycles", top), "y2": {"datum": 0},
                "tooltip": [_time_tip("bucket", "bucket start (UTC)"),
                            {"field": "reason_code", "type": "nominal"},
                            {"field": "cycles", "type": "quantitative"}],
            },
            "width": WIDTH, "height": 48,
        },
        "title": _title("Cycles reporting each reason code", every, "y: cycles"),
    }


def health_timeline_spec(events: pl.DataFrame, *, every: str = "1h") -> Spec:
    """Cycles in each health state per bucket (stacked bars), incidents as shaded bands.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    dict
        A Vega-Lite layer spec: discrete counts, no interpolation, so a bucket
        with one degraded cycle shows one orange cycle in that bucket and
        nowhere else.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> spec = health_timeline_spec(events, every="1h")
    >>> spec["title"]["subtitle"]
    '1h buckets, UTC; y: cycles'
    """
    every = questions.check_every(every)
    events = events.drop("source", strict=False)
    shares = _with_end(questions.health_shares(events, every=every).with_columns(
        pl.col("health_state").cast(pl.String)), every)
    states = list(STATE_COLORS)
    order = pl.col("health_state").replace_strict(states, list(range(len(states))))
    stacked = shares.sort("bucket", order).with_columns(
        pl.col("cycles").cum_sum().over("bucket").alias("top")
    ).with_columns((pl.col("top") - pl.col("cycles")).alias("bottom"))
    bars: Spec = {
        "data": {"values": _values(stacked)},
        "mark": {"type": "rect"},
        "encoding": {
            "x": time_x(), "x2": {"field": "bucket_end"},
            "y": _count_y("top", "cycles", stacked["top"].max()), "y2": {"field": "bottom"},
            "color": {"field": "health_state", "type": "nominal", "title": "health",
                      "scale": {"domain": states, "range": list(STATE_COLORS.values())}},
            "tooltip": [{"field": "health_state", "type": "nominal"},
                        {"field": "cycles", "type": "quantitative"},
                        {"field": "share", "type": "quantitative", "format": ".0%"}],
        },
    }
    bands: Spec = {
        "data": {"values": _values(incident_bands(events, every=every))},
        "mark": {"type": "rect", "fill": "#d62728", "fillOpacity": 0.08, "stroke": "#8b0000",
                 "strokeWidth": 1.5, "strokeDash": [5, 3]},
        "encoding": {
            "x": {"field": "start", "type": "temporal"}, "x2": {"field": "end"},
            "tooltip": [_time_tip("start"), _time_tip("end"),
                        {"field": "worst_state", "type": "nominal"},
                        {"field": "incidents", "type": "quantitative"},
                        {"field": "cycles", "type": "quantitative"}],
        },
    }
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "layer": [bars, bands],
        "width": WIDTH, "height": 180,
        "title": _title("Cycles per health state (shaded: incidents)", every, "y: cycles"),
    }


def incident_bands(events: pl.DataFrame, *, every: str = "1h") -> pl.DataFrame:
    """Incidents widened to whole buckets and merged where they touch (one band per stretch).

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    polars.DataFrame
        ``start``, ``end`` (UTC), ``worst_state``, ``cycles``, ``incidents``.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.
    """
    every = questions.check_every(every)
    spans = questions.incidents(events.drop("source", strict=False)).select(
        pl.col("start").dt.truncate(every),
        pl.col("end").dt.truncate(every).dt.offset_by(every),
        "worst_state", "cycles",
    )
    opened = pl.col("start") > pl.col("end").cum_max().shift(1)
    return (
        spans.with_columns(opened.fill_null(True).cum_sum().alias("band"))
        .group_by("band", maintain_order=True)
        .agg(pl.col("start").min(), pl.col("end").max(), pl.col("worst_state").max(),
             pl.col("cycles").sum().alias("cycles"), pl.len().alias("incidents"))
        .drop("band")
    )


def streak_backlog_spec(events: pl.DataFrame, *, every: str = "1h") -> Spec:
    """Peak failure streak (cycles) and peak queue depth (cases) per bucket, each on its own axis.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    dict
        A Vega-Lite vconcat spec: two bar charts sharing the time axis; every
        bucket with cycles draws, a peak of 0 as a thin baseline mark.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> spec = streak_backlog_spec(events, every="1h")
    >>> len(spec["vconcat"])
    2
    """
    every = questions.check_every(every)
    per_bucket = _with_end(
        events.group_by(pl.col("timestamp").dt.truncate(every).alias("bucket"))
        .agg(pl.col("failure_streak").max().alias("streak"),
             pl.col("backlog_cases").max().alias("backlog"), pl.len().alias("cycles"))
        .sort("bucket"), every)

    def panel(field: str, title: str, units: str, color: str) -> Spec:
        encoding: Spec = {
            "x": time_x(), "x2": {"field": "bucket_end"},
            "tooltip": [_time_tip("bucket", "bucket start (UTC)"),
                        {"field": field, "type": "quantitative", "title": f"peak ({units})"},
                        {"field": "cycles", "type": "quantitative"}],
        }
        floor = {"mark": {"type": "rule", "color": color, "strokeWidth": 2},
                 "encoding": encoding | {"y": {"datum": 0}}}
        bars = {"mark": {"type": "rect", "color": color},
                "encoding": encoding | {
                    "y": _count_y(field, f"peak {units}", per_bucket[field].max()),
                    "y2": {"datum": 0}}}
        return {"layer": [floor, bars], "width": WIDTH, "height": 110,
                "title": {"text": title, "anchor": "start", "fontSize": 12}}

    return {
        "$schema": VEGA_LITE_SCHEMA,
        "data": {"values": _values(per_bucket)},
        "vconcat": [
            panel("streak", "Peak failure streak", "cycles", "#d62728"),
            panel("backlog", "Peak queue depth (backlog)", "cases", "#9467bd"),
        ],
        "title": _title("Failure streak and queue depth", every,
                        "streak in cycles, queue depth in cases"),
    }


def chart_svg(chart: alt.TopLevelMixin | Spec) -> str:
    """A chart as inline SVG, rendered locally by vl-convert (no browser, no network).

    Parameters
    ----------
    chart : altair chart or dict
        A chart of this module, or its Vega-Lite spec.

    Returns
    -------
    str
        An ``<svg>`` document. The first call in a process starts vl-convert's
        JavaScript engine (about 1 s); later calls take about 0.05 s a chart.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> chart_svg(streak_backlog_spec(events, every="1h")).startswith("<svg")
    True
    """
    import vl_convert as vlc

    spec = chart if isinstance(chart, dict) else chart.to_dict()
    return str(vlc.vegalite_to_svg(spec))
