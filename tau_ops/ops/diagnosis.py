"""Troubleshooting diagnosis: every runbook symptom present, with its action and evidence.

Reads state, events and the channel store (never writes) and maps what it
finds onto the runbook's troubleshooting table, so an operator sees which
symptom holds, what to do, and exactly which cycles and cases show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tau_ops import health
from tau_ops.channel_store import LOG_FILE, channel_dirs
from tau_ops.clock import wall_clock_ms
from tau_ops.events import read_event_file
from tau_ops.state import StatePaths
from tau_ops.status import DeploymentStatusReport, deployment_status
from tau_ops.storage import read_jsonl, rotated_files
from tau_ops.timefmt import plural


class CycleEvidence(BaseModel):
    """One cycle that shows a symptom (evidence of a :class:`Finding`).

    Examples
    --------
    >>> CycleEvidence(timestamp_unix_ms=1_700_000_000_000, health_state="degraded",
    ...               reason_codes=["retry_attempted"]).health_state
    'degraded'
    """

    timestamp_unix_ms: int = Field(description="End of the cycle, Unix time in milliseconds (UTC).")
    health_state: str = Field(description="Health after that cycle.")
    reason_codes: list[str] = Field(description="That cycle's reason codes.")


class CaseEvidence(BaseModel):
    """One case from the channel store that shows a symptom (evidence of a :class:`Finding`).

    Examples
    --------
    >>> CaseEvidence(blueprint_id="api", case_id="c-1", event_key="k", outcome="malformed_input",
    ...              status_code=400, error_code=None, reason=None).status_code
    400
    """

    blueprint_id: str = Field(description="Blueprint whose channel-store log holds the case.")
    case_id: str = Field(description="The case.")
    event_key: str = Field(description="The log line's key (the case key).")
    outcome: str = Field(description="``malformed_input`` or ``retryable_failure``.")
    status_code: int | None = Field(description="HTTP status code logged; null when absent.")
    error_code: str | None = Field(description="Error code logged; null when absent.")
    reason: str | None = Field(description="Rejection reason logged; null when absent.")


class Finding(BaseModel):
    """A runbook symptom that is present now, with its action and evidence.

    Examples
    --------
    >>> import tempfile
    >>> report = diagnose(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> finding = report.findings[0]
    >>> finding.symptom, finding.reason_code
    ('no_cycle_hold', None)
    """

    symptom: str = Field(
        description=("The runbook symptom (``failing_streak``, ``stale_hold``, "
                     "``degraded_...``, ``queue_depth_nonzero``...).")
    )
    reason_code: str | None = Field(
        description="The reason code that shows it; null when none does."
    )
    action: str = Field(description="The runbook's troubleshooting action.")
    detail: str = Field(description="One line with the figures behind it.")
    cycles: list[CycleEvidence] = Field(
        description="Latest cycles that show the symptom (at most 50)."
    )
    cases: list[CaseEvidence] = Field(
        description="Cases in the channel store that show it (at most 50)."
    )


class Diagnosis(BaseModel):
    """``tau-ops diagnose``: current posture and every symptom present.

    Examples
    --------
    >>> import tempfile
    >>> report = diagnose(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> report.healthy, report.rollout_gate_reasons
    (False, ['no_cycle'])
    """

    state_dir: str = Field(description="The state dir diagnosed.")
    health_state: str = Field(description="``healthy``, ``degraded`` or ``failing``.")
    health_reason: str = Field(description="Why the health is what it is.")
    rollout_gate: str = Field(description="``pass`` or ``hold``.")
    rollout_gate_reasons: list[str] = Field(
        description="The rollout gate's reason codes (empty on pass)."
    )
    rollout_gate_reason: str = Field(description="One line explaining the gate.")
    recommendation: str = Field(description="The runbook's next action.")
    failure_streak: int = Field(description="Consecutive cycles with failed cases.")
    queue_depth: int = Field(description="Cases left queued after the last cycle.")
    stale: bool = Field(description="Whether the last cycle is older than the freshness limit.")
    healthy: bool = Field(description="True when no symptom is present and the gate passes.")
    findings: list[Finding] = Field(description="One finding per symptom present.")


# (symptom, reason code, outcome in the channel-store log that shows it)
DEGRADED_SYMPTOMS = (
    ("degraded_case_processing_failed", "case_processing_failed", "retryable_failure"),
    ("degraded_malformed_inputs_observed", "malformed_inputs_observed", "malformed_input"),
    ("degraded_retry_attempted", "retry_attempted", "retryable_failure"),
    ("degraded_retryable_failures_observed", "retryable_failures_observed", "retryable_failure"),
)
MAX_EVIDENCE = 50


def _events(state_dir: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in rotated_files(StatePaths(state_dir).events):
        records, _ = read_event_file(path)
        found += records
    return found


def _cycles_with(events: list[dict[str, Any]], code: str) -> list[CycleEvidence]:
    """The trailing run of cycles whose reason codes include ``code`` (newest last)."""
    run: list[CycleEvidence] = []
    for event in reversed(events):
        if code not in event["reason_codes"]:
            break
        run.append(CycleEvidence(timestamp_unix_ms=int(event.get("timestamp_unix_ms", 0)),
                                 health_state=str(event.get("health_state", "")),
                                 reason_codes=list(event["reason_codes"])))
    return list(reversed(run))[-MAX_EVIDENCE:]


def _cases(state_dir: Path, outcome: str, at_ms: set[int]) -> list[CaseEvidence]:
    found: list[CaseEvidence] = []
    for folder in channel_dirs(StatePaths(state_dir).channel_store):
        records, _ = read_jsonl(folder / LOG_FILE)
        for record in records:
            payload = record.get("payload")
            if not isinstance(payload, dict) or payload.get("outcome") != outcome:
                continue
            if record.get("timestamp_unix_ms") not in at_ms:
                continue
            found.append(CaseEvidence(
                blueprint_id=str(payload.get("blueprint_id", folder.name)),
                case_id=str(payload.get("case_id", "")),
                event_key=str(record.get("event_key", "")),
                outcome=outcome,
                status_code=payload.get("status_code") if isinstance(
                    payload.get("status_code"), int) else None,
                error_code=payload.get("error_code"),
                reason=payload.get("reason"),
            ))
    return found[:MAX_EVIDENCE]


def diagnose(
    state_dir: Path | str,
    *,
    now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> Diagnosis:
    """Report every troubleshooting symptom of the runbook that holds for this state dir.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir (read only).
    now_ms : int, optional
        The time to judge at, unix ms (default: the wall clock).
    stale_after_ms, skew_tolerance_ms : int
        Freshness limit and clock-skew tolerance, milliseconds (as for the gate).

    Returns
    -------
    Diagnosis
        The gate decision (``rollout_gate_reasons``) and one finding per
        symptom present, each with its runbook action and evidence.

    Raises
    ------
    StateError
        ``state.json`` is corrupt or holds impossible health values.

    Examples
    --------
    >>> import tempfile
    >>> report = diagnose(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> [f.symptom for f in report.findings], report.rollout_gate
    (['no_cycle_hold'], 'hold')
    """
    state_dir = Path(state_dir)
    now = wall_clock_ms() if now_ms is None else now_ms
    status = deployment_status(state_dir, now_ms=now, stale_after_ms=stale_after_ms,
                               skew_tolerance_ms=skew_tolerance_ms)
    events = _events(state_dir)
    last = events[-1]["reason_codes"] if events else []
    findings: list[Finding] = []
    if status.health_state == "failing":
        cycles = _cycles_with(events, "case_processing_failed")
        findings.append(Finding(
            symptom="failing_streak", reason_code="case_processing_failed",
            action=health.ACTIONS["failing"],
            detail=f"failure_streak={status.failure_streak} (>= {health.FAILING_STREAK})",
            cycles=cycles,
            cases=_cases(state_dir, "retryable_failure", {c.timestamp_unix_ms for c in cycles}),
        ))
    if status.health_state in ("degraded", "failing"):
        for symptom, code, outcome in DEGRADED_SYMPTOMS:
            if code not in last:
                continue
            cycles = _cycles_with(events, code)
            findings.append(Finding(
                symptom=symptom, reason_code=code, action=health.ACTIONS[code],
                detail=f"health {status.health_state} with {code} in the last cycle "
                       f"({plural(len(cycles), 'consecutive cycle')})",
                cycles=cycles,
                cases=_cases(state_dir, outcome, {cycles[-1].timestamp_unix_ms}),
            ))
    findings += _gate_findings(status, events)
    return Diagnosis(
        state_dir=str(state_dir), health_state=status.health_state,
        health_reason=status.health_reason, rollout_gate=status.rollout_gate,
        rollout_gate_reasons=status.rollout_gate_reasons,
        rollout_gate_reason=status.rollout_gate_reason,
        recommendation=status.recommendation, failure_streak=status.failure_streak,
        queue_depth=status.queue_depth,
        stale=status.stale, healthy=not findings, findings=findings,
    )


# gate reason -> (symptom, action key); health_* reasons are the runbook's own symptoms above
GATE_SYMPTOMS = {
    "no_cycle": ("no_cycle_hold", "no_cycle"),
    "runner_paused": ("runner_paused_hold", "runner_paused"),
    "clock_skew": ("clock_skew_hold", "clock_skew"),
    "stale_state": ("stale_hold", "stale"),
}


def _gate_findings(status: DeploymentStatusReport, events: list[dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    for code in status.rollout_gate_reasons:
        if code not in GATE_SYMPTOMS:
            continue
        symptom, action = GATE_SYMPTOMS[code]
        findings.append(Finding(symptom=symptom, reason_code=None, action=health.ACTIONS[action],
                                detail=_gate_detail(status, code), cycles=[], cases=[]))
    if status.queue_depth > 0:
        findings.append(Finding(
            symptom="queue_depth_nonzero", reason_code="queue_backpressure_applied",
            action=health.ACTIONS["queue_backpressure_applied"],
            detail=f"queue_depth={status.queue_depth}: {plural(status.queue_depth, 'case')} "
                   "left in backlog",
            cycles=_cycles_with(events, "queue_backpressure_applied"), cases=[],
        ))
    return findings


def _gate_detail(status: DeploymentStatusReport, code: str) -> str:
    if code == "no_cycle":
        return "no deployment cycle recorded yet"
    if code == "runner_paused" and status.pause is not None:
        pause = status.pause
        return (f"runner paused by {pause.paused_by or 'unknown'} at "
                f"{pause.paused_utc or 'unknown time'}: {pause.reason or 'no reason given'}")
    if code == "clock_skew":
        return (f"last cycle at {status.updated_utc} is {status.clock_skew_ms} ms ahead of this "
                f"clock (tolerance {status.clock_skew_tolerance_ms} ms)")
    return (f"last cycle at {status.updated_utc} is {status.state_age_ms} ms old "
            f"(> {status.stale_after_ms} ms)")
