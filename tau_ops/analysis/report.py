"""The incident report: one self-contained HTML file plus an image file per chart.

Charts are rendered to SVG (and PNG when asked) by vl-convert and inlined in
the HTML, so the report opens offline and can be attached to a ticket.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Literal

import altair as alt
import polars as pl
import vl_convert as vlc
from pydantic import BaseModel

from tau_ops import health
from tau_ops.analysis import charts, questions
from tau_ops.analysis.loaders import load_rollouts, read_events
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
    state_dir: Path, output_dir: Path, *, image_format: ImageFormat = "svg",
    every: str | None = None, now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> ReportResult:
    """Write ``report.html`` and one image per chart of ``state_dir``'s events to ``output_dir``.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir (read only).
    output_dir : Path
        Where ``report.html`` and the chart images go.
    image_format : {"svg", "png"}
        Format of the chart files.
    every : str, optional
        Time bucket width (``15m``, ``1h``); default fits the log.
    now_ms : int, optional
        When the gate is judged, unix ms (default: the wall clock).
    stale_after_ms, skew_tolerance_ms : int
        Freshness limit and clock-skew tolerance, milliseconds (as for the gate).

    Returns
    -------
    ReportResult
        Paths written; the summary and recommendation are the rollout gate's
        (:func:`tau_ops.health.gate_decision`), so a held gate never reads as
        "promotion can continue".
    """
    log = read_events(Path(state_dir))
    events = log.frame
    every = questions.check_every(every) if every else charts.auto_every(events)
    posture = questions.summary(events)
    decision = gate_now(Path(state_dir), now_ms=wall_clock_ms() if now_ms is None else now_ms,
                        stale_after_ms=stale_after_ms, skew_tolerance_ms=skew_tolerance_ms)
    summary = summary_line(decision, posture)
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
        rollouts = load_rollouts(Path(state_dir))
    except StateError:
        rollouts = pl.DataFrame()
    figures: dict[str, alt.TopLevelMixin] = {
        "reason-code-trends": charts.reason_code_trend_chart(events, every=every),
        "health-timeline": charts.health_timeline_chart(events, every=every),
        "failure-streak-queue-depth": charts.streak_backlog_chart(events, every=every),
    }
    sections = []
    images = []
    for name, chart in figures.items():
        svg, data = _render(chart, image_format)
        path = Path(output_dir) / f"{name}.{image_format}"
        atomic_write_bytes(path, data)
        images.append(str(path))
        sections.append(f'<figure id="{name}">{svg}</figure>')
    rollout_table = (
        rollouts.group_by("blueprint_id", "deploy_target", "outcome")
        .agg(pl.len().alias("rollouts"))
        .sort("blueprint_id", "deploy_target", "outcome")
        if rollouts.height else pl.DataFrame()
    )
    body = "\n".join([
        f"<h1>tau-ops incident report: {html.escape(str(state_dir))}</h1>",
        f"<p class=\"summary\">{html.escape(summary)}</p>",
        f"<p>recommended action: {html.escape(decision.recommendation)}</p>",
        f"<p>{log.invalid_lines} invalid line(s) skipped in {len(log.files)} file(s); "
        f"buckets of {html.escape(every)}</p>",
        *sections,
        "<h2>Incidents</h2>", _table(incident_table),
        "<h2>Reason codes</h2>", _table(codes),
        "<h2>Rollouts</h2>", _table(rollout_table),
    ])
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>tau-ops report {html.escape(str(state_dir))}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
        "</style></head><body>\n" + body + "\n</body></html>\n"
    )
    html_path = Path(output_dir) / REPORT_FILE
    atomic_write_text(html_path, page)
    return ReportResult(
        html_path=str(html_path), image_paths=images, summary=summary,
        rollout_gate=decision.rollout_gate, rollout_gate_reasons=decision.rollout_gate_reasons,
        recommendation=decision.recommendation,
        cycles=events.height, invalid_lines=log.invalid_lines, incidents=incident_table.height,
    )
