"""The fleet view: one rollout verdict over many runners, one row per member, refreshable.

A thin front-end over :func:`tau_ops.fleet_status`: the verdict banner, the
reasons it holds, and a table of members (gate, health, age, streak,
backlog, reasons). Nothing is judged here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from tau_ops.errors import TauOpsError
from tau_ops.fleet import FleetPolicy, FleetReport, fleet_status
from tau_ops.widgets._display import (
    GATE_COLOURS,
    HEALTH_COLOURS,
    badge,
    esc,
    message_html,
    show_gate,
)


def _age(ms: int) -> str:
    seconds = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def members_html(report: FleetReport) -> str:
    """The member table: gate and health as coloured pills, reasons as code chips."""
    head = "".join(f"<th style='text-align:left;padding-right:1em'>{esc(c)}</th>" for c in (
        "member", "kind", "gate", "health", "age", "streak (cycles)", "backlog (cases)",
        "reasons"))
    rows = []
    for m in report.members:
        reasons = " ".join(f"<code>{esc(r)}</code>" for r in m.rollout_gate_reasons) or "-"
        if m.error:
            reasons += f"<br><small>{esc(m.error)}</small>"
        health = (badge(m.health_state, HEALTH_COLOURS.get(m.health_state, "#555"))
                  if m.health_state else "-")
        rows.append(
            "<tr>"
            f"<td>{esc(m.name)}</td><td>{esc(m.kind)}</td>"
            f"<td>{badge(m.rollout_gate, GATE_COLOURS[m.rollout_gate])}</td><td>{health}</td>"
            f"<td>{_age(m.state_age_ms) if m.readable and m.updated_unix_ms else '-'}</td>"
            f"<td>{m.failure_streak}</td><td>{m.queue_depth}</td><td>{reasons}</td>"
            "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


class FleetView:
    """Watch the rollout gate of a whole fleet; press Refresh to read every member again.

    Parameters
    ----------
    members : sequence of str
        As for :func:`tau_ops.fleet_status`: state dirs or globs, snapshot
        archives, gateway URLs, optionally ``key=value,...@`` labelled.
    policy : FleetPolicy, optional
        When the fleet passes (default: every member).
    options : Any
        Keyword arguments passed to :func:`tau_ops.fleet_status`
        (``stale_after_ms`` in ms, ``timeout_s`` in seconds, ``clock``).

    Examples
    --------
    >>> import tempfile
    >>> view = FleetView([tempfile.mkdtemp()])
    >>> view.report.fleet_gate
    'hold'
    """

    def __init__(self, members: Sequence[str], *, policy: FleetPolicy | None = None,
                 **options: Any) -> None:
        self.members = list(members)
        self.policy = policy or FleetPolicy()
        self.options = options
        self.report: FleetReport | None = None
        self.gate = w.HTML()
        self.summary = w.HTML()
        self.reasons = w.HTML()
        self.table = w.HTML()
        self.message = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.widget = w.VBox([
            w.HBox([w.Label("fleet gate", layout=w.Layout(width="9em")), self.gate,
                    self.summary]),
            self.reasons, self.table, w.HBox([self.refresh_button, self.message]),
        ])
        self.refresh()

    def refresh(self) -> None:
        """Read every member again and show the verdict; a bad member list shows its error."""
        try:
            report = fleet_status(self.members, policy=self.policy, **self.options)
        except TauOpsError as exc:
            self.message.value = message_html(str(exc), ok=False)
            return
        self.report = report
        show_gate(self.gate, report.fleet_gate)
        self.summary.value = esc(f" {report.pass_count} of {report.member_count} members pass")
        self.reasons.value = ("<ul>" + "".join(f"<li>{esc(d)}</li>"
                                                for d in report.fleet_gate_details) + "</ul>"
                              if report.fleet_gate_details else "")
        self.table.value = members_html(report)
        self.message.value = message_html("refreshed", ok=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
