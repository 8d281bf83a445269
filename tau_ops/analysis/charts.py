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


def time_x(field: str = "bucket") -> alt.X:
    """The shared time axis: UTC scale, 24-hour labels, dates where the day changes."""
    return alt.X(
        f"{field}:T", title=TIME_TITLE, scale=alt.Scale(type="utc"),
        axis=alt.Axis(labelExpr=TIME_LABELS, labelOverlap="greedy", labelSeparation=12,
                      tickCount=max(2, WIDTH // 110), labelFlush=False, grid=False),
    )


def _with_end(frame: pl.DataFrame, every: str) -> pl.DataFrame:
    return frame.with_columns(pl.col("bucket").dt.offset_by(every).alias("bucket_end"))


def _title(text: str, every: str, units: str) -> alt.TitleParams:
    return alt.TitleParams(text, subtitle=f"{every} buckets, UTC; {units}", anchor="start")


def _count_ticks(top: object) -> list[int]:
    peak = max(1, int(top)) if isinstance(top, int | float) else 1
    step = -(-peak // 5)
    return list(range(0, peak + step, step))


def _count_axis(title: str, top: object) -> alt.Axis:
    """A count axis with whole-number ticks only (at most six)."""
    return alt.Axis(title=title, values=_count_ticks(top), format="d")


def _count_scale(top: object) -> alt.Scale:
    """A count scale from 0 to the last whole-number tick."""
    return alt.Scale(domain=[0, _count_ticks(top)[-1]], nice=False)


def reason_code_trend_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.FacetChart:
    """Cycles that reported each reason code, per bucket: one row of bars per code present.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (a ``source`` column is ignored: chart one source at a time).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.FacetChart
        Bars as wide as their bucket; y = cycles (whole numbers); rows only
        for codes present, labelled in full, in SPEC order.
    """
    every = questions.check_every(every)
    trends = _with_end(
        questions.reason_code_trends(events.drop("source", strict=False), every=every)
        .with_columns(pl.col("reason_code").cast(pl.String)), every)
    present = [code for code in REASON_CODES if code in set(trends["reason_code"].to_list())]
    chart = (
        alt.Chart(trends)
        .mark_bar(color="#4c78a8")
        .encode(
            x=time_x(), x2="bucket_end:T",
            y=alt.Y("cycles:Q", axis=_count_axis("cycles", trends["cycles"].max()),
                    scale=_count_scale(trends["cycles"].max())),
            y2=alt.Y2(datum=0),
            tooltip=[alt.Tooltip("bucket:T", title="bucket start (UTC)", format="%Y-%m-%d %H:%M",
                                 formatType="utc"), "reason_code:N", "cycles:Q"],
        )
        .properties(width=WIDTH, height=48)
        .facet(row=alt.Row("reason_code:N", sort=present, title=None,
                           header=alt.Header(labelAngle=0, labelAlign="left", labelOrient="top",
                                             labelAnchor="start", labelLimit=0,
                                             labelFontSize=12)),
               spacing=6)
        .properties(title=_title("Cycles reporting each reason code", every, "y: cycles"))
    )
    return cast(alt.FacetChart, chart)


def health_timeline_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.LayerChart:
    """Cycles in each health state per bucket (stacked bars), incidents as shaded bands.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.LayerChart
        Discrete counts, no interpolation: a bucket with one degraded cycle
        shows one orange cycle in that bucket and nowhere else.
    """
    every = questions.check_every(every)
    events = events.drop("source", strict=False)
    shares = _with_end(questions.health_shares(events, every=every).with_columns(
        pl.col("health_state").cast(pl.String)), every)
    bands = incident_bands(events, every=every).with_columns(
        pl.col("worst_state").cast(pl.String)
    )
    states = list(STATE_COLORS)
    order = pl.col("health_state").replace_strict(states, list(range(len(states))))
    stacked = shares.sort("bucket", order).with_columns(
        pl.col("cycles").cum_sum().over("bucket").alias("top")
    ).with_columns((pl.col("top") - pl.col("cycles")).alias("bottom"))
    bars = (
        alt.Chart(stacked)
        .mark_rect()
        .encode(
            x=time_x(), x2="bucket_end:T",
            y=alt.Y("top:Q", axis=_count_axis("cycles", stacked["top"].max()),
                    scale=_count_scale(stacked["top"].max())),
            y2="bottom:Q",
            color=alt.Color("health_state:N", title="health",
                            scale=alt.Scale(domain=states, range=list(STATE_COLORS.values()))),
            tooltip=["health_state:N", "cycles:Q", alt.Tooltip("share:Q", format=".0%")],
        )
    )
    band_layer = (
        alt.Chart(bands)
        .mark_rect(fill="#d62728", fillOpacity=0.08, stroke="#8b0000", strokeWidth=1.5,
                   strokeDash=[5, 3])
        .encode(x=alt.X("start:T"), x2="end:T",
                tooltip=[alt.Tooltip("start:T", format="%Y-%m-%d %H:%M", formatType="utc"),
                         alt.Tooltip("end:T", format="%Y-%m-%d %H:%M", formatType="utc"),
                         "worst_state:N", "incidents:Q", "cycles:Q"])
    )
    layered = alt.layer(
        bars, band_layer,
        title=_title("Cycles per health state (shaded: incidents)", every, "y: cycles"),
    )
    return cast(alt.LayerChart, layered.properties(width=WIDTH, height=180))


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


def streak_backlog_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.VConcatChart:
    """Peak failure streak (cycles) and peak queue depth (cases) per bucket, each on its own axis.

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.VConcatChart
        Two bar charts sharing the time axis; every bucket with cycles draws,
        a peak of 0 as a thin baseline mark.
    """
    every = questions.check_every(every)
    per_bucket = _with_end(
        events.group_by(pl.col("timestamp").dt.truncate(every).alias("bucket"))
        .agg(pl.col("failure_streak").max().alias("streak"),
             pl.col("backlog_cases").max().alias("backlog"), pl.len().alias("cycles"))
        .sort("bucket"), every)

    def panel(field: str, title: str, units: str, color: str) -> alt.LayerChart:
        base = alt.Chart(per_bucket).encode(
            x=time_x(), x2="bucket_end:T",
            tooltip=[alt.Tooltip("bucket:T", title="bucket start (UTC)",
                                 format="%Y-%m-%d %H:%M", formatType="utc"),
                     alt.Tooltip(f"{field}:Q", title=f"peak ({units})"), "cycles:Q"],
        )
        bars = base.mark_rect(color=color).encode(
            y=alt.Y(f"{field}:Q", axis=_count_axis(f"peak {units}", per_bucket[field].max()),
                    scale=_count_scale(per_bucket[field].max())), y2=alt.Y2(datum=0))
        floor = base.mark_rule(color=color, strokeWidth=2).encode(y=alt.datum(0))
        layered = alt.layer(floor, bars,
                            title=alt.TitleParams(title, anchor="start", fontSize=12))
        return cast(alt.LayerChart, layered.properties(width=WIDTH, height=110))

    chart = alt.vconcat(
        panel("streak", "Peak failure streak", "cycles", "#d62728"),
        panel("backlog", "Peak queue depth (backlog)", "cases", "#9467bd"),
        title=_title("Failure streak and queue depth", every,
                     "streak in cycles, queue depth in cases"),
    )
    return chart


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """A chart as inline SVG, rendered locally by vl-convert (no JavaScript, no network)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(chart.to_json()))
