"""The incident report: one self-contained HTML file plus an image file per chart.

Charts are rendered to SVG (and PNG when asked) by vl-convert and inlined in
the HTML, so the report opens offline and can be attached to a ticket.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import altair as alt
import polars as pl
import vl_convert as vlc
from pydantic import BaseModel

from tau_ops import health
from tau_ops.analysis import charts, questions
from tau_ops.analysis.loaders import load_rollouts, read_events
from tau_ops.analysis.sources import state_dir_of
from tau_ops.clock import wall_clock_ms
from tau_ops.errors import StateError
from tau_ops.status import decide, read_pause, read_status_inputs
from tau_ops.storage import atomic_write_bytes, atomic_write_text

ImageFormat = Literal["svg", "png"]
REPORT_FILE = "report.html"
MAX_TABLE_ROWS = 50


class ReportResult(BaseModel):
    """What ``tau-ops report`` wrote and the posture it found."""

    html_path: str
    image_paths: list[str]
    summary: str
    rollout_gate: str
    rollout_gate_reasons: list[str]
    recommendation: str
    cycles: int
    invalid_lines: int
    incidents: int


def _table(frame: pl.DataFrame, *, limit: int = MAX_TABLE_ROWS) -> str:
    if frame.height == 0:
        return "<p><em>none</em></p>"
    shown = frame.tail(limit)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    rows = []
    for row in shown.iter_rows():
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    note = f"<p>last {limit} of {frame.height} rows</p>" if frame.height > limit else ""
    return f"{note}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _render(chart: alt.TopLevelMixin, fmt: ImageFormat) -> tuple[str, bytes]:
    svg = charts.chart_svg(chart)
    data = svg.encode("utf-8") if fmt == "svg" else vlc.vegalite_to_png(chart.to_json(), scale=2)
    return svg, data


def _safe(name: str) -> str:
    from tau_ops.storage import safe_component

    return safe_component(name)


def _section(
    name: str | None, state_dir: Path, events: pl.DataFrame, posture: questions.EventsSummary,
    every: str, output_dir: Path, image_format: ImageFormat, images: list[str],
) -> str:
    """The HTML of one source: posture, charts (also written as files) and tables."""
    incident_table = questions.incidents(events).with_columns(
        (pl.col("duration").dt.total_milliseconds() / 1000).alias("duration")
    ).rename({"duration": "duration_s"})
    codes = (
        questions.reason_code_trends(events, every=every)
        .group_by("reason_code").agg(pl.col("cycles").sum())
        .sort("cycles", pl.col("reason_code").to_physical(), descending=[True, False])
        .with_columns(
            pl.col("reason_code").cast(pl.String)
            .map_elements(questions.troubleshooting_action, return_dtype=pl.String)
            .alias("action")
        )
    )
    try:
        rollouts = load_rollouts(state_dir)
    except StateError:
        rollouts = pl.DataFrame()
    figures: dict[str, alt.TopLevelMixin] = {
        "reason-code-trends": charts.reason_code_trend_chart(events, every=every),
        "health-timeline": charts.health_timeline_chart(events, every=every),
        "failure-streak-queue-depth": charts.streak_backlog_chart(events, every=every),
    }
    suffix = f"-{_safe(name)}" if name is not None else ""
    figures_html = []
    for figure, chart in figures.items():
        svg, data = _render(chart, image_format)
        path = output_dir / f"{figure}{suffix}.{image_format}"
        atomic_write_bytes(path, data)
        images.append(str(path))
        figures_html.append(f'<figure id="{figure}{suffix}">{svg}</figure>')
    rollout_table = (
        rollouts.group_by("blueprint_id", "deploy_target", "outcome")
        .agg(pl.len().alias("rollouts"))
        .sort("blueprint_id", "deploy_target", "outcome")
        if rollouts.height else pl.DataFrame()
    )
    level = "h3" if name is not None else "h2"
    head = [f"<h2>{html.escape(name)}</h2>",
            f"<p class=\"summary\">{html.escape(posture.line)}</p>"] if name else []
    return "\n".join([
        '<section class="source">' if name is not None else "<section>",
        *head,
        *figures_html,
        f"<{level}>Incidents</{level}>", _table(incident_table),
        f"<{level}>Reason codes</{level}>", _table(codes),
        f"<{level}>Rollouts</{level}>", _table(rollout_table),
        "</section>",
    ])


def gate_now(
    state_dir: Path, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> health.GateDecision:
    """The rollout gate of ``state_dir`` now, as every other surface decides it.

    A state that cannot be read is decided as ``invalid_state`` (never raised):
    a report is still written for it.
    """
    try:
        inputs = read_status_inputs(state_dir)
    except StateError as exc:
        return health.gate_decision(None, now_ms=now_ms, stale_after_ms=stale_after_ms,
                                    skew_tolerance_ms=skew_tolerance_ms,
                                    pause=read_pause(state_dir), invalid=str(exc))
    return decide(inputs, now_ms=now_ms, stale_after_ms=stale_after_ms,
                  skew_tolerance_ms=skew_tolerance_ms)


def summary_line(decision: health.GateDecision, posture: questions.EventsSummary) -> str:
    """The report's one-line summary: the gate and why first, then the event history."""
    reasons = ",".join(decision.rollout_gate_reasons) or "none"
    return (f"rollout_gate={decision.rollout_gate} rollout_gate_reasons={reasons}: "
            f"{decision.reason}; history: {posture.line}")


def write_report(
    state_dir: Path | Sequence[Path], output_dir: Path, *, image_format: ImageFormat = "svg",
    every: str | None = None, now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> ReportResult:
    """Write ``report.html`` and one image per chart (per source) to ``output_dir``.

    Parameters
    ----------
    state_dir : Path or sequence of Path
        One state dir or snapshot archive (``*.tar.gz``), or several (a fleet):
        then the page has one section per source (its posture, charts and
        tables) and image names end with ``-<source>`` (sanitized).
    output_dir : Path
        Folder for ``report.html`` and the images (created when missing).
    image_format : {"svg", "png"}
        Format of the chart files; the page always inlines SVG.
    every : str, optional
        Bucket width (``15m``, ``1h``); by default fitted to the whole log.
    now_ms : int, optional
        When the gate is judged, unix ms (default: the wall clock).
    stale_after_ms, skew_tolerance_ms : int
        Freshness limit and clock-skew tolerance, milliseconds (as for the gate).

    Returns
    -------
    ReportResult
        Paths written, the summary line(s) and counts. The summary starts with
        the rollout gate (:func:`tau_ops.health.gate_decision`) and the
        recommendation is the gate's, so a held gate never reads as
        "promotion can continue"; a fleet holds when any state dir holds.

    Raises
    ------
    InputError
        A state dir or events file is missing or unreadable.
    UsageError
        ``every`` is not a duration.
    """
    dirs = [Path(state_dir)] if isinstance(state_dir, str | Path) else [Path(p) for p in state_dir]
    fleet = len(dirs) > 1
    log = read_events(dirs if fleet else dirs[0])
    events = log.frame
    every = questions.check_every(every) if every else charts.auto_every(events)
    posture = questions.summary(events)
    now = wall_clock_ms() if now_ms is None else now_ms
    decisions = []
    for source in dirs:
        with state_dir_of(source) as folder:  # a snapshot archive: its verified private copy
            decisions.append(gate_now(folder, now_ms=now, stale_after_ms=stale_after_ms,
                                      skew_tolerance_ms=skew_tolerance_ms))
    if fleet:
        lines = [f"{d}: {summary_line(dec, posture.by_source[str(d)])}"
                 for d, dec in zip(dirs, decisions, strict=True)]
    else:
        lines = [summary_line(decisions[0], posture)]
    held = [dec for dec in decisions if dec.rollout_gate == "hold"]
    reasons = [code for code in health.GATE_REASONS
               if any(code in dec.rollout_gate_reasons for dec in decisions)]
    recommendation = held[0].recommendation if held else decisions[0].recommendation
    output_dir = Path(output_dir)
    images: list[str] = []
    sections = []
    for folder in dirs:
        if fleet:
            name = str(folder)
            own = events.filter(pl.col("source").cast(pl.String) == name).drop("source")
            sections.append(_section(name, folder, own, posture.by_source[name], every,
                                     output_dir, image_format, images))
        else:
            sections.append(_section(None, folder, events, posture, every, output_dir,
                                     image_format, images))
    title = ", ".join(str(d) for d in dirs)
    body = "\n".join([
        f"<h1>tau-ops incident report: {html.escape(title)}</h1>",
        *[f"<p class=\"summary\">{html.escape(line)}</p>" for line in lines],
        f"<p>recommended action: {html.escape(recommendation)}</p>",
        f"<p>{log.invalid_lines} invalid line(s) skipped in {len(log.files)} file(s); "
        f"buckets of {html.escape(every)}, times in UTC</p>",
        *sections,
    ])
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>tau-ops report {html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
        "section.source{border-top:2px solid #888;margin-top:2em}"
        "</style></head><body>\n" + body + "\n</body></html>\n"
    )
    html_path = output_dir / REPORT_FILE
    atomic_write_text(html_path, page)
    incidents = sum(questions.incidents(
        events.filter(pl.col("source").cast(pl.String) == str(d)).drop("source")).height
        for d in dirs) if fleet else questions.incidents(events).height
    return ReportResult(
        html_path=str(html_path), image_paths=images, summary="\n".join(lines),
        rollout_gate="hold" if held else "pass", rollout_gate_reasons=reasons,
        recommendation=recommendation,
        cycles=events.height, invalid_lines=log.invalid_lines, incidents=incidents,
    )
