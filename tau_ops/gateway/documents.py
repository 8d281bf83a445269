"""The gateway's own status document: the essentials of a deployment status, the full one inside."""

from __future__ import annotations

from pydantic import BaseModel

from tau_ops.status import DeploymentStatusReport


class GatewayStatus(BaseModel):
    """``GET /gateway/status``: the essentials on top, the full deployment status inside."""

    service: str
    health_state: str
    health_reason: str
    recommendation: str
    rollout_gate: str
    reason_codes: list[str]
    updated_unix_ms: int
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    failure_streak: int
    queue_depth: int
    rollout_count: int
    cycle_reports: int
    generated_unix_ms: int
    deployment: DeploymentStatusReport


def gateway_status(report: DeploymentStatusReport, *, now_ms: int) -> GatewayStatus:
    """Wrap a deployment status into the gateway's status document."""
    return GatewayStatus(
        service="tau-ops-gateway",
        health_state=report.health_state,
        health_reason=report.health_reason,
        recommendation=report.recommendation,
        rollout_gate=report.rollout_gate,
        reason_codes=report.last_reason_codes,
        updated_unix_ms=report.updated_unix_ms,
        state_age_ms=report.state_age_ms,
        stale_after_ms=report.stale_after_ms,
        stale=report.stale,
        failure_streak=report.failure_streak,
        queue_depth=report.queue_depth,
        rollout_count=report.rollout_count,
        cycle_reports=report.cycle_reports,
        generated_unix_ms=now_ms,
        deployment=report,
    )
