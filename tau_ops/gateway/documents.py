"""The gateway's documents: its own status, the seed-shaped reports, and its 503 error bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tau_ops import health
from tau_ops.status import DeploymentStatusReport, read_pause


class GatewayStatus(BaseModel):
    """``GET /gateway/status``: the essentials on top, the full deployment status inside."""

    service: str
    health_state: str
    health_reason: str
    recommendation: str
    rollout_gate: str
    rollout_gate_reasons: list[str]
    rollout_gate_reason: str
    reason_codes: list[str]
    updated_unix_ms: int
    updated_utc: str | None
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    runner_paused: bool
    failure_streak: int
    queue_depth: int
    rollout_count: int
    cycle_reports: int
    generated_unix_ms: int
    deployment: DeploymentStatusReport


def gateway_status(report: DeploymentStatusReport, *, now_ms: int) -> GatewayStatus:
    """Wrap a deployment status into the gateway's status document.

    Parameters
    ----------
    report : DeploymentStatusReport
        The deployment status judged at ``now_ms``.
    now_ms : int
        When the document is generated, unix ms.

    Returns
    -------
    GatewayStatus
        The gate decision's fields copied from ``report`` (never re-judged)
        and the whole report under ``deployment``.
    """
    return GatewayStatus(
        service="tau-ops-gateway",
        health_state=report.health_state,
        health_reason=report.health_reason,
        recommendation=report.recommendation,
        rollout_gate=report.rollout_gate,
        rollout_gate_reasons=report.rollout_gate_reasons,
        rollout_gate_reason=report.rollout_gate_reason,
        reason_codes=report.last_reason_codes,
        updated_unix_ms=report.updated_unix_ms,
        updated_utc=report.updated_utc,
        state_age_ms=report.state_age_ms,
        stale_after_ms=report.stale_after_ms,
        stale=report.stale,
        runner_paused=report.runner_paused,
        failure_streak=report.failure_streak,
        queue_depth=report.queue_depth,
        rollout_count=report.rollout_count,
        cycle_reports=report.cycle_reports,
        generated_unix_ms=now_ms,
        deployment=report,
    )


def unavailable_body(
    code: str, message: str, state_dir: Path, *, now_ms: int, stale_after_ms: int,
    skew_tolerance_ms: int, invalid: str | None,
) -> dict[str, Any]:
    """The JSON body of a 503 (no state yet, or a state that cannot be trusted).

    The gate fields come from :func:`tau_ops.health.gate_decision`, like every
    other surface: ``no_cycle`` or ``invalid_state``, plus ``runner_paused``
    when the pause marker is present.
    """
    decision = health.gate_decision(None, now_ms=now_ms, stale_after_ms=stale_after_ms,
                                    skew_tolerance_ms=skew_tolerance_ms,
                                    pause=read_pause(state_dir), invalid=invalid)
    return {
        "error": code, "message": message, "state_dir": str(state_dir),
        "rollout_gate": decision.rollout_gate,
        "rollout_gate_reasons": decision.rollout_gate_reasons,
        "rollout_gate_reason": decision.reason,
        "recommendation": decision.recommendation,
        "runner_paused": decision.runner_paused,
    }
