"""The incident review: pick a time range and filters, see the analysis charts, incidents,
runbook actions and a blueprint's channel log.

Everything shown comes from :mod:`tau_ops.analysis` (``load_events``,
``incidents``, ``summary``, the chart functions, ``troubleshooting_action``,
``load_channel_log``); the widget only narrows the events frame to the chosen
range and filters before handing it over. Charts are rendered to SVG by
vl-convert, so they show offline and in any notebook front-end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import altair as alt
import ipywidgets as w
import polars as pl

from tau_ops import analysis
from tau_ops.analysis import chart_svg, select_events
from tau_ops.errors import TauOpsError
from tau_ops.models import HEALTH_STATES, REASON_CODES
from tau_ops.widgets._display import esc, message_html, table_html

BUCKET_CHOICES = ("auto", "1m", "5m", "15m", "1h", "6h", "1d", "7d")
MAX_ROWS = 50
LABEL_STYLE = {"description_width": "8em"}
"""Wide enough for the longest control label ("Reason codes") in any notebook font."""
RANGE_HTML = '<span class="tau-range" style="white-space:nowrap">{}</span>'
"""The time-range readout: one line, never wrapped mid-timestamp."""
WRAPPED = '<span style="overflow-wrap:anywhere">{}</span>'
"""Text that may break anywhere (the summary's comma-joined codes have no space)."""
CHARTS: dict[str, Callable[..., alt.TopLevelMixin]] = {
    "reason_codes": analysis.reason_code_trend_chart,
    "health": analysis.health_timeline_chart,
    "streak_backlog": analysis.streak_backlog_chart,
}


def fitted(svg: str) -> str:
    """An SVG chart scaled down to its notebook column (never cut at the right edge).

    Parameters
    ----------
    svg : str
        An ``<svg ...>`` document with a ``viewBox``, as :func:`tau_ops.analysis.chart_svg`
        renders it.

    Returns
    -------
    str
        The same SVG, at most as wide as its container, keeping its aspect ratio.

    Examples
    --------
    >>> fitted('<svg width="835" viewBox="0 0 835 270"></svg>')
    '<svg style="max-width:100%;height:auto" width="835" viewBox="0 0 835 270"></svg>'
    """
    return svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)


class IncidentReview:
    """Review the event history of ``state_dir``: filters, charts, incidents, actions, logs.

    Building the review only reads the state dir (the analysis cache is off
    unless ``cache=True``). Widgets are public attributes for scripts and tests.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir whose ``runtime-events.jsonl`` (and rotated
        files) and channel store are reviewed.
    cache : bool
        Let the analysis loaders keep their Parquet cache in the state dir
        (default False: read only).

    Examples
    --------
    >>> import tempfile
    >>> review = IncidentReview(tempfile.mkdtemp())
    >>> review.events.height, review.summary_label.value
    (0, '<span style="overflow-wrap:anywhere">no cycles recorded</span>')
    """

    def __init__(self, state_dir: Path | str, *, cache: bool = False) -> None:
        self.state_dir = Path(state_dir)
        self._cache = cache
        self.events = pl.DataFrame(schema=analysis.EVENT_SCHEMA)
        self.selected = self.events
        self.incident_frame = pl.DataFrame()
        self.channel_frame = pl.DataFrame()
        self.charts: dict[str, alt.TopLevelMixin] = {}
        self.actions: list[tuple[str, int, str]] = []
        self.every = "1h"
        self._stamps: list[datetime] = []
        self._quiet = False

        # The slider's own readout is cut off for two timestamps: a label on one line shows
        # them, moving under the slider when the notebook is narrow.
        self.time_range = w.SelectionRangeSlider(options=["-"], description="Time range",
                                                 readout=False, layout=w.Layout(width="40em"),
                                                 style=LABEL_STYLE)
        self.range_label = w.HTML(layout=w.Layout(width="auto"))
        self.range_label.add_class("tau-range-label")
        self.health_filter = w.SelectMultiple(options=HEALTH_STATES, value=HEALTH_STATES,
                                              description="Health", rows=3, style=LABEL_STYLE)
        self.reason_filter = w.SelectMultiple(options=REASON_CODES, value=(),
                                              description="Reason codes", rows=5,
                                              style=LABEL_STYLE, layout=w.Layout(width="34em"))
        self.bucket = w.Dropdown(options=BUCKET_CHOICES, value="auto", description="Bucket")
        self.blueprint = w.Dropdown(options=[], description="Blueprint")
        self.reload_button = w.Button(description="Reload", icon="refresh")
        self.message = w.HTML()
        self.summary_label = w.HTML()
        self.chart_views = {name: w.HTML() for name in CHARTS}
        self.incident_table = w.HTML()
        self.actions_table = w.HTML()
        self.channel_table = w.HTML()

        # The slider's value is not recomputed when new options keep its index (ipywidgets
        # 8), so the range is read from its index over the review's own timestamps.
        self.time_range.observe(self._changed, names="index")
        for control in (self.health_filter, self.reason_filter, self.bucket):
            control.observe(self._changed, names="value")
        self.blueprint.observe(self._changed, names="value")
        self.reload_button.on_click(lambda _: self.reload())

        tabs = w.Tab(children=[self.chart_views[name] for name in CHARTS])
        for index, title in enumerate(("Reason codes", "Health", "Streak & backlog")):
            tabs.set_title(index, title)
        self.widget = w.VBox([
            w.HTML(f"<b>Incident review</b> &mdash; state dir <code>{esc(self.state_dir)}</code>"),
            w.HBox([self.time_range, self.range_label, self.reload_button],
                   layout=w.Layout(flex_flow="row wrap", align_items="center")),
            w.HBox([self.health_filter, self.reason_filter, self.bucket]),
            self.message,
            self.summary_label,
            tabs,
            w.HTML("<b>Incidents</b>"), self.incident_table,
            w.HTML("<b>Troubleshooting actions</b>"), self.actions_table,
            w.HTML("<b>Channel-store log</b>"), self.blueprint, self.channel_table,
        ])
        self.widget.add_class("tau-incident-review")
        self.reload()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _changed(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self.update()

    def reload(self) -> None:
        """Re-read events and channel logs, keep the filters, and redraw."""
        try:
            self.events = analysis.load_events(self.state_dir, cache=self._cache)
            blueprints = analysis.load_channel_log(self.state_dir).get_column(
                "blueprint_id").unique(maintain_order=True).sort().to_list()
        except TauOpsError as exc:
            self.message.value = message_html(f"error: {exc}", ok=False)
            return
        self.message.value = ""
        stamps = self.events.get_column("timestamp").unique().sort().to_list()
        options = [(f"{t:%Y-%m-%d %H:%M:%S}", t) for t in stamps] or [("no cycles", None)]
        keep = self.blueprint.value
        self._quiet = True
        try:
            self._stamps = stamps
            self.time_range.options = options
            self.time_range.index = (0, len(options) - 1)
            self.time_range.value = (options[0][1], options[-1][1])
            self.time_range.disabled = not stamps
            self.blueprint.options = blueprints
            # Show a log straight away: the previous choice when it still exists, else the first.
            self.blueprint.value = keep if keep in blueprints else (
                blueprints[0] if blueprints else None)
        finally:
            self._quiet = False
        self.update()

    def _range(self) -> tuple[datetime | None, datetime | None]:
        if not self._stamps:
            return None, None  # no cycle yet: nothing to narrow
        low, high = self.time_range.index
        return self._stamps[low], self._stamps[high]

    def update(self) -> None:
        """Apply range and filters, then redraw summary, charts, incidents and actions."""
        start, end = self._range()
        shown = (f"{start:%Y-%m-%d %H:%M:%S} &ndash; {end:%Y-%m-%d %H:%M:%S} UTC"
                 if start is not None and end is not None else "no cycles")
        self.range_label.value = RANGE_HTML.format(shown)
        ranged = select_events(self.events, start=start, end=end)
        self.selected = select_events(ranged, health_states=self.health_filter.value,
                                      reason_codes=self.reason_filter.value)
        self.every = (analysis.auto_every(self.selected) if self.bucket.value == "auto"
                      else self.bucket.value)
        self.summary_label.value = WRAPPED.format(esc(analysis.summary(self.selected).line))
        self._draw_charts()
        self._show_incidents(ranged)
        self._show_actions()
        self.show_channel_log()

    def _draw_charts(self) -> None:
        if self.selected.height == 0:
            self.charts = {}
            for view in self.chart_views.values():
                view.value = "<em>no cycle matches the range and filters</em>"
            return
        self.charts = {name: make(self.selected, every=self.every)
                       for name, make in CHARTS.items()}
        for name, chart in self.charts.items():
            self.chart_views[name].value = fitted(chart_svg(chart))

    def _show_incidents(self, ranged: pl.DataFrame) -> None:
        # Incidents are runs between healthy cycles, so they are found on the whole range
        # and then filtered, never computed from a frame with the healthy cycles removed.
        found = analysis.incidents(ranged)
        states = list(self.health_filter.value)
        keep = pl.col("worst_state").cast(pl.String).is_in(states)
        if self.reason_filter.value:
            keep &= pl.col("dominant_reason_codes").list.eval(
                pl.element().cast(pl.String).is_in(list(self.reason_filter.value))).list.any()
        self.incident_frame = found.filter(keep)
        shown = self.incident_frame.tail(MAX_ROWS)
        self.incident_table.value = table_html(
            ["start (UTC)", "end (UTC)", "cycles", "worst state", "peak streak", "dominant codes",
             "action"],
            [(r["start"], r["end"], r["cycles"], r["worst_state"], r["peak_failure_streak"],
              r["dominant_reason_codes"], r["action"]) for r in shown.iter_rows(named=True)],
            empty="no incident in the range")

    def _show_actions(self) -> None:
        codes = (self.selected.select(pl.col("reason_codes").explode().cast(pl.String))
                 .get_column("reason_codes").drop_nulls().value_counts(sort=True))
        order = analysis.PROBLEM_CODES
        rows = sorted(((code, count, analysis.troubleshooting_action(code))
                       for code, count in codes.iter_rows() if code in order),
                      key=lambda r: (-r[1], order.index(r[0])))  # most cycles, then SPEC order
        self.actions = rows
        self.actions_table.value = table_html(["reason code", "cycles", "runbook action"], rows,
                                              empty="no problem reason code in the selection")

    def show_channel_log(self) -> None:
        """The selected blueprint's channel-store log lines within the time range."""
        if not self.blueprint.value:
            self.channel_frame = pl.DataFrame()
            self.channel_table.value = "<em>no channel-store log yet</em>"
            return
        start, end = self._range()
        frame = analysis.load_channel_log(self.state_dir, self.blueprint.value)
        if start is not None and end is not None:
            frame = frame.filter(pl.col("timestamp").is_between(start, end))
        self.channel_frame = frame
        columns = ["timestamp", "case_id", "outcome", "target", "runtime", "status_code",
                   "error_code", "artifact"]
        self.channel_table.value = table_html(
            ["timestamp (UTC)", *columns[1:]], frame.select(columns).tail(MAX_ROWS).iter_rows(),
            empty="no log line in the range")
