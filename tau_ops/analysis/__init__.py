"""Events analysis: runtime events as polars frames, incident questions, charts, reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tau_ops.analysis.loaders import (
    EVENT_SCHEMA,
    EventLog,
    load_channel_log,
    load_events,
    load_rollouts,
    load_wasm_deliverables,
    read_events,
    scan_events,
)
from tau_ops.analysis.questions import (
    ACTION_BY_REASON_CODE,
    PROBLEM_CODES,
    EventsSummary,
    backlog_trend,
    health_shares,
    health_timeline,
    incidents,
    reason_code_trends,
    select_events,
    summary,
    troubleshooting_action,
)

if TYPE_CHECKING:
    from tau_ops.analysis._altair import (
        health_timeline_chart,
        reason_code_trend_chart,
        streak_backlog_chart,
    )
    from tau_ops.analysis.charts import (
        auto_every,
        chart_svg,
        health_timeline_spec,
        reason_code_trend_spec,
        streak_backlog_spec,
    )
    from tau_ops.analysis.report import ReportResult, write_report

_LAZY = {
    "auto_every": "charts",
    "chart_svg": "charts",
    "health_timeline_chart": "_altair",
    "health_timeline_spec": "charts",
    "reason_code_trend_chart": "_altair",
    "reason_code_trend_spec": "charts",
    "streak_backlog_chart": "_altair",
    "streak_backlog_spec": "charts",
    "ReportResult": "report",
    "write_report": "report",
}


def __getattr__(name: str) -> Any:
    """Charts and reports load on first use (altair only for the ``*_chart`` functions)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tau_ops.analysis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tau_ops.analysis.{module}"), name)

__all__ = [
    "ACTION_BY_REASON_CODE",
    "EVENT_SCHEMA",
    "PROBLEM_CODES",
    "EventLog",
    "EventsSummary",
    "ReportResult",
    "auto_every",
    "backlog_trend",
    "chart_svg",
    "health_shares",
    "health_timeline",
    "health_timeline_chart",
    "health_timeline_spec",
    "incidents",
    "load_channel_log",
    "load_events",
    "load_rollouts",
    "load_wasm_deliverables",
    "read_events",
    "reason_code_trend_chart",
    "reason_code_trend_spec",
    "reason_code_trends",
    "scan_events",
    "select_events",
    "streak_backlog_chart",
    "streak_backlog_spec",
    "summary",
    "troubleshooting_action",
    "write_report",
]
