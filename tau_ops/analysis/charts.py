"""Altair charts of an events frame: reason-code trend, health timeline, streak and backlog.

Each chart aggregates per time bucket before plotting, so its embedded data
stays small whatever the log's size; :func:`auto_every` picks a bucket width
that keeps a chart to a few hundred buckets.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import altair as alt
import polars as pl

from tau_ops.analysis import questions
from tau_ops.models import REASON_CODES

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
MAX_BUCKETS = 400
WIDTH = 720


def auto_every(events: pl.DataFrame, *, max_buckets: int = MAX_BUCKETS) -> str:
    """The narrowest bucket width giving at most ``max_buckets`` buckets over the log."""
    if events.height < 2:
        return "1h"
    span_ms = events.select(
        (pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_milliseconds()
    ).item()
    for name, width in BUCKET_WIDTHS:
        if span_ms / (width.total_seconds() * 1000) <= max_buckets:
            return name
    return BUCKET_WIDTHS[-1][0]


def reason_code_trend_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.Chart:
    """Stacked bars: cycles per reason code per bucket."""
    trends = questions.reason_code_trends(events, every=every).with_columns(
        pl.col("reason_code").cast(pl.String)
    )
    chart = (
        alt.Chart(trends, title=f"Reason codes per {every}")
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title="time (UTC)"),
            y=alt.Y("sum(cycles):Q", stack="zero", title="cycles"),
            color=alt.Color("reason_code:N", title="reason code",
                            scale=alt.Scale(domain=list(REASON_CODES))),
            tooltip=["bucket:T", "reason_code:N", "cycles:Q"],
        )
        .properties(width=WIDTH, height=260)
    )
    return cast(alt.Chart, chart)


def health_timeline_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.LayerChart:
    """Share of each health state per bucket, with incidents as shaded bands."""
    shares = questions.health_shares(events, every=every).with_columns(
        pl.col("health_state").cast(pl.String)
    )
    bands = incident_bands(events, every=every).with_columns(
        pl.col("worst_state").cast(pl.String)
    )
    states = list(STATE_COLORS)
    area = (
        alt.Chart(shares)
        .mark_area()
        .encode(
            x=alt.X("bucket:T", title="time (UTC)"),
            y=alt.Y("sum(share):Q", stack="normalize", title="share of cycles"),
            color=alt.Color("health_state:N", title="health",
                            scale=alt.Scale(domain=states, range=list(STATE_COLORS.values()))),
            order=alt.Order("health_state:N"),
            tooltip=["bucket:T", "health_state:N", "cycles:Q", "share:Q"],
        )
    )
    band_layer = (
        alt.Chart(bands)
        .mark_rect(opacity=0.15, color="#d62728")
        .encode(x="start:T", x2="end:T",
                tooltip=["start:T", "end:T", "worst_state:N", "incidents:Q", "cycles:Q"])
    )
    layered = alt.layer(band_layer, area, title=f"Health per {every} (bands: incidents)")
    return cast(alt.LayerChart, layered.properties(width=WIDTH, height=200))


def incident_bands(events: pl.DataFrame, *, every: str = "1h") -> pl.DataFrame:
    """Incidents widened to whole buckets and merged where they touch (one band per stretch)."""
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


def streak_backlog_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.Chart:
    """Peak failure streak and peak queue depth (backlog) per bucket, one line each."""
    keys = ["source"] if "source" in events.columns else []
    per_bucket = (
        events.group_by(
            pl.col("timestamp").dt.truncate(questions.check_every(every)).alias("bucket"), *keys
        )
        .agg(
            pl.col("failure_streak").max().alias("failure streak"),
            pl.col("backlog_cases").max().alias("queue depth"),
        )
        .unpivot(index=["bucket", *keys], variable_name="series", value_name="value")
        .sort("series", "bucket")
    )
    chart = (
        alt.Chart(per_bucket, title=f"Peak failure streak and queue depth per {every}")
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("bucket:T", title="time (UTC)"),
            y=alt.Y("value:Q", title="peak in bucket"),
            color=alt.Color("series:N", title=None),
            tooltip=["bucket:T", "series:N", "value:Q"],
        )
        .properties(width=WIDTH, height=200)
    )
    return cast(alt.Chart, chart)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """A chart as inline SVG, rendered locally by vl-convert (no JavaScript, no network)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(chart.to_json()))
