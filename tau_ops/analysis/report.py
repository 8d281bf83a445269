"""The incident report: one self-contained HTML file, and on request an image file per chart.

Each chart is embedded as its Vega-Lite spec and drawn by the browser with the
Vega, Vega-Lite and vega-embed bundles shipped in the package and inlined in
the page (:mod:`tau_ops.analysis._vega`), so the report opens offline and can
be attached to a ticket. Image files (SVG or PNG, rendered by vl-convert) are
opt-in: starting vl-convert's JavaScript engine costs about 1 s.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from tau_ops import health
from tau_ops.analysis import _vega, charts, questions
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
    """What ``tau-ops report`` wrote and the posture it found (``--json`` prints it).

    Examples
    --------
    >>> sorted(ReportResult.model_fields)[:3]
    ['cycles', 'html_path', 'image_paths']
    """

    html_path: str = Field(description="The report page written (``report.html``).")
    image_paths: list[str] = Field(
        description="Chart image files written (``--image-format``); empty by default.")
    summary: str = Field(description="One line: the gate now and the history's posture.")
    rollout_gate: str = Field(description="``pass`` or ``hold``, as transport health gives it.")
    rollout_gate_reasons: list[str] = Field(
        description="Gate reason codes in contract order; empty when the gate passes.")
    recommendation: str = Field(description="The runbook's action for the worst symptom.")
    cycles: int = Field(description="Cycles read from the event logs (count).")
    invalid_lines: int = Field(description="Event lines skipped as invalid (count).")
    incidents: int = Field(description="Incidents found: runs of non-healthy cycles (count).")


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


def _image(spec: charts.Spec, fmt: ImageFormat) -> bytes:
    """A chart as an image file's bytes, rendered by vl-convert."""
    if fmt == "svg":
        return charts.chart_svg(spec).encode("utf-8")
    import vl_convert as vlc

    return bytes(vlc.vegalite_to_png(spec, scale=2))


def _figure(figure_id: str, spec: charts.Spec) -> str:
    """A ``<figure>`` holding the chart's spec, drawn in the browser by :data:`RENDER_SCRIPT`."""
    data = json.dumps(spec, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        data = data.replace(char, escaped)  # only inside JSON strings: same value, safe in HTML
    return (f'<figure id="{html.escape(figure_id)}"><div class="chart"></div>'
            f'<script type="application/json" class="tau-chart">{data}</script></figure>')


RENDER_SCRIPT = """<script>
for (const node of document.querySelectorAll("script.tau-chart")) {
  const target = node.parentElement.querySelector("div.chart");
  vegaEmbed(target, JSON.parse(node.textContent),
            {actions: false, renderer: "svg", mode: "vega-lite"})
    .catch((error) => { target.textContent = "chart failed to draw: " + error; });
}
</script>"""
"""Draws every embedded chart as SVG with the inlined vega-embed (no network)."""


def _safe(name: str) -> str:
    from tau_ops.storage import safe_component

    return safe_component(name)


def _section(
    name: str | None, state_dir: Path, events: pl.DataFrame, posture: questions.EventsSummary,
    every: str, output_dir: Path, image_format: ImageFormat | None, images: list[str],
    suffix: str = "",
) -> str:
    """The HTML of one source: posture, charts (written as files when asked) and tables.

    ``suffix`` ends the source's figure ids and image file names; the caller
    keeps it unique across sources (two names may sanitize alike).
    """
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
    figures: dict[str, charts.Spec] = {
        "reason-code-trends": charts.reason_code_trend_spec(events, every=every),
        "health-timeline": charts.health_timeline_spec(events, every=every),
        "failure-streak-queue-depth": charts.streak_backlog_spec(events, every=every),
    }
    figures_html = []
    for figure, spec in figures.items():
        if image_format is not None:
            path = output_dir / f"{figure}{suffix}.{image_format}"
            atomic_write_bytes(path, _image(spec, image_format))
            images.append(str(path))
        figures_html.append(_figure(f"{figure}{suffix}", spec))
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
    state_dir: Path | Sequence[Path], output_dir: Path, *,
    image_format: ImageFormat | None = None,
    every: str | None = None, now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> ReportResult:
    """Write ``report.html`` (and, when asked, one image per chart per source) to ``output_dir``.

    Parameters
    ----------
    state_dir : Path or sequence of Path
        One state dir or snapshot archive (``*.tar.gz``), or several (a fleet):
        then the page has one section per source (its posture, charts and
        tables) and image names end with ``-<source>`` (sanitized).
    output_dir : Path
        Folder for ``report.html`` and the images (created when missing).
    image_format : {"svg", "png"}, optional
        Also write each chart as an image file of this format, rendered by
        vl-convert (about 1 s more: it starts a JavaScript engine). By default
        no image file is written; the page draws its charts either way.
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

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "healthy",
    ...         "reason_codes": ["healthy_cycle"]}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> result = write_report(d, d / "out")
    >>> Path(result.html_path).name, result.cycles, result.image_paths
    ('report.html', 1, [])
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
    suffixes: set[str] = set()
    for folder in dirs:
        if fleet:
            name = str(folder)
            own = events.filter(pl.col("source").cast(pl.String) == name).drop("source")
            suffix, count = f"-{_safe(name)}", 1
            while suffix in suffixes:  # `a/d` and `a_d` sanitize alike: never overwrite
                count += 1
                suffix = f"-{_safe(name)}-{count}"
            suffixes.add(suffix)
            sections.append(_section(name, folder, own, posture.by_source[name], every,
                                     output_dir, image_format, images, suffix))
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
        "figure{margin:1em 0}"
        "</style>\n" + _vega.inline_scripts() + "\n</head><body>\n"
        "<noscript><p>The charts need JavaScript; <code>tau-ops report --image-format svg</code> "
        "also writes them as image files.</p></noscript>\n"
        + body + "\n" + RENDER_SCRIPT + "\n</body></html>\n"
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
