"""Small rendering helpers shared by the widgets: escaped HTML, gate colours, error text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import ipywidgets as w

GATE_CLASSES = {"pass": "tau-gate-pass", "hold": "tau-gate-hold"}
GATE_COLOURS = {"pass": "#1a7f37", "hold": "#b42318"}
HEALTH_COLOURS = {"healthy": "#1a7f37", "degraded": "#b54708", "failing": "#b42318"}


def esc(value: object) -> str:
    """HTML-escape any value's text (every shown string may come from a file)."""
    return html.escape(str(value))


def badge(text: str, colour: str) -> str:
    """A coloured pill; the text stays readable for screen readers and screenshots."""
    return (f'<span style="background:{colour};color:#fff;border-radius:4px;'
            f'padding:1px 8px;font-weight:600">{esc(text)}</span>')


def show_gate(label: w.HTML, gate: str) -> None:
    """Show ``gate`` coloured, with a stable CSS class (``tau-gate-pass``/``tau-gate-hold``)."""
    label.value = badge(gate, GATE_COLOURS.get(gate, "#555"))
    for css in GATE_CLASSES.values():
        label.remove_class(css)
    if gate in GATE_CLASSES:
        label.add_class(GATE_CLASSES[gate])


def show_health(label: w.HTML, state: str) -> None:
    """Show a health state as a coloured pill."""
    label.value = badge(state, HEALTH_COLOURS.get(state, "#555"))


POSTURE = {  # gate reason -> (badge text, colour) when health alone would look fine
    "invalid_state": ("invalid state", "#b42318"),
    "no_cycle": ("no cycle yet", "#555"),
    "runner_paused": ("runner paused", "#b54708"),
    "clock_skew": ("clock skew", "#b54708"),
    "stale_state": ("stale", "#b54708"),
}


def show_posture(label: w.HTML, health_state: str, gate_reasons: Sequence[str]) -> None:
    """Show health, never as a green "healthy" beside a hold.

    A failing or degraded health shows as such; otherwise, when the gate holds,
    the first gate reason shows instead (``no cycle yet``, ``runner paused``,
    ``stale``, ``clock skew``, ``invalid state``), so the badge and the gate agree.
    """
    for code in gate_reasons:
        if code in POSTURE and (code == "invalid_state" or health_state == "healthy"):
            text, colour = POSTURE[code]
            label.value = badge(text, colour)
            return
    show_health(label, health_state)


def codes_html(codes: Sequence[str]) -> str:
    """Reason codes as monospace chips, in their given order."""
    if not codes:
        return "<em>none</em>"
    return " ".join(f"<code>{esc(code)}</code>" for code in codes)


def message_html(text: str, *, ok: bool) -> str:
    """One status line: green when an action worked, red with the error otherwise."""
    colour = "#1a7f37" if ok else "#b42318"
    return f'<span style="color:{colour}">{esc(text)}</span>'


def kv_table(rows: Mapping[str, Any]) -> str:
    """A two-column table of field names and values (lists joined with commas)."""
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th>"
        f"<td>{esc(_cell(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


TABLE_CELL = "overflow-wrap:break-word;padding-right:0.8em"
BREAK_AFTER = re.compile(r"([_/,]|(?<=[A-Za-z0-9])-(?=[A-Za-z]))")
"""Where a cell's text may wrap besides spaces (after ``_``, ``/``, ``,`` and a hyphen joining
words), so a wide table fits its notebook column without breaking inside a word, a date or
an option's leading ``--``."""


def table_html(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str) -> str:
    """A plain HTML table that fits its column; ``empty`` is shown when there is no row.

    Times show as ``YYYY-MM-DD HH:MM:SS`` in UTC (name the zone in the column).
    """
    body = "".join(
        "<tr>" + "".join(f"<td style='{TABLE_CELL}'>{_wrappable(_cell(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    if not body:
        return f"<em>{esc(empty)}</em>"
    head = "".join(f"<th style='text-align:left;{TABLE_CELL}'>{_wrappable(c)}</th>"
                   for c in columns)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _wrappable(text: str) -> str:
    return BREAK_AFTER.sub(r"\1<wbr>", esc(text))


def _cell(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return f"{utc:%Y-%m-%d %H:%M:%S}"
    return "" if value is None else str(value)


def row(label: str, widget: w.Widget) -> w.HBox:
    """A labelled line of the status panel."""
    return w.HBox([w.Label(label, layout=w.Layout(width="9em")), widget])
