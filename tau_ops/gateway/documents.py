"""The gateway's own status document: the essentials of a deployment status, the full one inside."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tau_ops.status import DeploymentStatusReport


class GatewayStatus(BaseModel):
    """``GET /gateway/status``: the essentials on top, the full deployment status inside.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import deployment_status
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     document = gateway_status(deployment_status(tmp, now_ms=1_000), now_ms=1_000)
    >>> document.service, document.rollout_gate, document.generated_unix_ms
    ('tau-ops-gateway', 'hold', 1000)
    """

    service: str = Field(description="always tau-ops-gateway")
    health_state: str = Field(description="healthy, degraded or failing")
    health_reason: str = Field(description="one-line reason for the health state")
    recommendation: str = Field(description="what the operator should do next")
    rollout_gate: str = Field(description="pass or hold")
    reason_codes: list[str] = Field(description="reason codes of the last cycle")
    updated_unix_ms: int = Field(description="when the last cycle ended (Unix ms)")
    state_age_ms: int = Field(description="age of the state when served (ms)")
    stale_after_ms: int = Field(description="age from which the state counts as stale (ms)")
    stale: bool = Field(description="whether the state is stale")
    failure_streak: int = Field(description="consecutive cycles with failed cases")
    queue_depth: int = Field(description="cases left in the backlog (cases)")
    rollout_count: int = Field(description="rollouts recorded in the state")
    cycle_reports: int = Field(description="cycle reports recorded in the state")
    generated_unix_ms: int = Field(description="when this document was made (Unix ms)")
    deployment: DeploymentStatusReport = Field(description="the full deployment status")


def gateway_status(report: DeploymentStatusReport, *, now_ms: int) -> GatewayStatus:
    """Wrap a deployment status into the gateway's status document.

    Parameters
    ----------
    report : DeploymentStatusReport
        What :func:`tau_ops.deployment_status` returned for the state dir.
    now_ms : int
        When the document is made, Unix epoch milliseconds (ms).

    Returns
    -------
    GatewayStatus
        The essentials copied from ``report`` (``reason_codes`` is its
        ``last_reason_codes``) and ``report`` itself as ``deployment``.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import deployment_status
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     document = gateway_status(deployment_status(tmp, now_ms=1_000), now_ms=1_000)
    >>> document.service, document.rollout_gate, document.generated_unix_ms
    ('tau-ops-gateway', 'hold', 1000)
    """
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
