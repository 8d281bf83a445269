"""The gateway's documents: its own status, the seed-shaped reports, and its 503 error bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tau_ops import health
from tau_ops.status import DeploymentStatusReport, read_pause


class GatewayStatus(BaseModel):
    """``GET /gateway/status``: the essentials on top, the full deployment status inside.

    SPEC section 9 asks for ``health_state``, ``rollout_gate``,
    ``reason_codes`` and the deployment status of section 4; the top-level
    fields are copies of :class:`~tau_ops.status.DeploymentStatusReport`
    fields (the gate is judged once, by :func:`tau_ops.health.gate_decision`).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import RunnerConfig, deployment_status, load_fixture, run_cycle
    >>> from tau_ops._data import data_path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     cycle = run_cycle(load_fixture(data_path("rollout-pass.json")),
    ...                       RunnerConfig(state_dir=tmp), clock=lambda: 1_767_225_600_000)
    ...     report = deployment_status(tmp, now_ms=1_767_225_660_000)
    >>> doc = gateway_status(report, now_ms=1_767_225_660_000)
    >>> doc.health_state, doc.rollout_gate, doc.state_age_ms, doc.reason_codes
    ('healthy', 'pass', 60000, ['wasm_rollout_applied', 'cloud_rollout_applied'])
    """

    service: str = Field(description="always tau-ops-gateway")
    health_state: str = Field(description="healthy, degraded or failing (SPEC section 4)")
    health_reason: str = Field(description="one line on why the health state holds")
    recommendation: str = Field(
        description="the runbook action for the current state; never promotion while the "
        "gate holds")
    rollout_gate: str = Field(description="pass or hold")
    rollout_gate_reasons: list[str] = Field(
        description="why the gate holds, in the shared order (empty when it passes)")
    rollout_gate_reason: str = Field(description="one line explaining the gate decision")
    reason_codes: list[str] = Field(description="the last cycle's reason codes (SPEC section 3)")
    updated_unix_ms: int = Field(description="when the last cycle ended, Unix epoch ms")
    updated_utc: str | None = Field(
        description="updated_unix_ms as ISO 8601 UTC, or null before the first cycle")
    state_age_ms: int = Field(description="age of the last cycle when judged (ms)")
    stale_after_ms: int = Field(description="freshness limit the gate used (ms; default 24 h)")
    stale: bool = Field(description="true when state_age_ms exceeds stale_after_ms")
    runner_paused: bool = Field(description="true when the runner's pause marker is present")
    failure_streak: int = Field(description="consecutive cycles with failed cases")
    queue_depth: int = Field(description="cases left in the backlog after the last cycle")
    rollout_count: int = Field(description="rollout records in state.json")
    cycle_reports: int = Field(description="valid event lines (cycles) in the event log")
    generated_unix_ms: int = Field(description="when this document was generated, Unix epoch ms")
    deployment: DeploymentStatusReport = Field(
        description="the whole --deployment-status-json document, judged at generated_unix_ms")


def gateway_status(report: DeploymentStatusReport, *, now_ms: int) -> GatewayStatus:
    """Wrap a deployment status into the gateway's status document.

    Parameters
    ----------
    report : DeploymentStatusReport
        The deployment status judged at ``now_ms``.
    now_ms : int
        When the document is generated, Unix epoch ms.

    Returns
    -------
    GatewayStatus
        The gate decision's fields copied from ``report`` (never re-judged)
        and the whole report under ``deployment``.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import deployment_status
    >>> with tempfile.TemporaryDirectory() as tmp:  # no cycle has run there yet
    ...     report = deployment_status(tmp, now_ms=1_767_225_600_000)
    >>> doc = gateway_status(report, now_ms=1_767_225_600_000)
    >>> doc.rollout_gate, doc.rollout_gate_reasons, doc.deployment.state_exists
    ('hold', ['no_cycle'], False)
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
