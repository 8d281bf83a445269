"""Prometheus text exposition (all gauges) of a deployment status, for ``GET /metrics``."""

from __future__ import annotations

from tau_ops.status import DeploymentStatusReport

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _metric_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metrics:
    """Accumulates Prometheus text exposition, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str,
               samples: list[tuple[dict[str, str], float | int]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_metric_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {value}" if labels else f"{name} {value}")

    def one(self, name: str, help_text: str, value: float | int) -> None:
        self.family(name, help_text, [({}, value)])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(report: DeploymentStatusReport | None, *, state_exists: bool) -> str:
    """Prometheus text exposition (all gauges) of a status; None when the state is unreadable."""
    m = _Metrics()
    m.one("tau_deployment_state_readable",
          "1 when state.json could be read (or does not exist yet), 0 when it is corrupt",
          int(report is not None))
    m.one("tau_deployment_state_exists", "1 when state.json exists", int(state_exists))
    if report is None:
        return m.text()
    m.family("tau_rollout_gate", "Rollout gate: 1 for the current gate value",
             [({"gate": g}, int(report.rollout_gate == g)) for g in ("pass", "hold")])
    m.family("tau_health_state", "Health classification: 1 for the current state",
             [({"state": s}, int(report.health_state == s))
              for s in ("healthy", "degraded", "failing")])
    m.one("tau_failure_streak", "Consecutive cycles with failed cases", report.failure_streak)
    m.one("tau_queue_depth", "Cases left in backlog by the last cycle", report.queue_depth)
    m.one("tau_active_runs", "Runs in progress at the last cycle", report.active_runs)
    m.one("tau_state_stale", "1 when the last cycle is older than stale_after_ms",
          int(report.stale))
    m.one("tau_state_age_seconds", "Age of the last cycle", report.state_age_ms / 1000)
    m.one("tau_last_cycle_timestamp_seconds", "Unix time of the last cycle (0: none)",
          report.updated_unix_ms / 1000)
    m.one("tau_last_cycle_duration_seconds", "Duration of the last cycle",
          report.cycle_duration_ms / 1000)
    m.family("tau_last_cycle_cases", "Cases of the last cycle by result", [
        ({"result": r}, getattr(report, f"last_cycle_{r}"))
        for r in ("discovered", "processed", "completed", "failed", "duplicates", "malformed",
                  "retries")
    ])
    m.one("tau_rollout_count", "Rollout records in state", report.rollout_count)
    m.family("tau_rollouts", "Rollout records by deploy target",
             [({"deploy_target": t}, n) for t, n in report.deploy_target_counts.items()])
    m.one("tau_rollout_replicas", "Replicas across all rollout records", report.total_replicas)
    m.one("tau_processed_case_keys", "Case keys marked processed", report.processed_case_count)
    m.one("tau_wasm_deliverables", "WASM deliverables recorded", report.wasm_deliverable_count)
    m.one("tau_cycles", "Cycle reports in the event files (backups included)",
          report.cycle_reports)
    m.one("tau_invalid_cycle_reports", "Unreadable lines in the event files",
          report.invalid_cycle_reports)
    m.one("tau_event_files", "Event files, rotated backups included", report.event_files)
    m.family("tau_reason_code_cycles", "Cycles that reported each reason code",
             [({"reason_code": c}, n) for c, n in report.reason_code_counts.items()])
    m.family("tau_last_cycle_reason_code", "Reason codes of the last cycle",
             [({"reason_code": c}, 1) for c in report.last_reason_codes])
    return m.text()
