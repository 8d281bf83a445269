"""Transport health and deployment status reports (SPEC section 4, runbook 'Health').

Both reports are computed from the files alone, never changing them, so the
CLI, the gateway and notebooks can call them at any time, even while a
runner holds the lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from tau_ops import health
from tau_ops.clock import wall_clock_ms
from tau_ops.events import read_event_file
from tau_ops.models import DeploymentState, HealthSnapshot
from tau_ops.state import StatePaths, read_state
from tau_ops.storage import rotated_files


class TransportHealthReport(BaseModel):
    """``--transport-health-inspect deployment``: the health snapshot and its verdict."""

    transport: str
    state_dir: str
    state_path: str
    state_exists: bool
    health_state: str
    health_reason: str
    recommendation: str
    rollout_gate: str
    updated_unix_ms: int
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    cycle_duration_ms: int
    queue_depth: int
    active_runs: int
    failure_streak: int
    last_cycle_discovered: int
    last_cycle_processed: int
    last_cycle_completed: int
    last_cycle_failed: int
    last_cycle_duplicates: int
    last_cycle_malformed: int
    last_cycle_retries: int


class DeploymentStatusReport(TransportHealthReport):
    """``--deployment-status-inspect``: health plus rollout and event counts."""

    events_path: str
    processed_case_count: int
    rollout_count: int
    wasm_rollout_count: int
    cloud_rollout_count: int
    wasm_deliverable_count: int
    total_replicas: int
    deploy_target_counts: dict[str, int]
    runtime_profile_counts: dict[str, int]
    environment_counts: dict[str, int]
    outcome_counts: dict[str, int]
    status_code_counts: dict[str, int]
    error_code_counts: dict[str, int]
    cycle_reports: int
    invalid_cycle_reports: int
    event_files: int
    reason_code_counts: dict[str, int]
    last_reason_codes: list[str]


def _static_health_fields(
    state_dir: Path, state: DeploymentState | None
) -> tuple[health.HealthVerdict, dict[str, object]]:
    """The verdict and the health fields that do not depend on the clock."""
    snapshot = state.health if state else None
    verdict = health.classify(snapshot)
    shown = snapshot or HealthSnapshot()
    return verdict, {
        "transport": "deployment",
        "state_dir": str(state_dir),
        "state_path": str(StatePaths(state_dir).state),
        "state_exists": state is not None,
        "health_state": verdict.state,
        "health_reason": verdict.reason,
        **shown.model_dump(include=set(HealthSnapshot.model_fields)),
    }


def _timed_health_fields(
    state: DeploymentState | None, verdict: health.HealthVerdict, *, now_ms: int,
    stale_after_ms: int,
) -> dict[str, object]:
    """Freshness, gate and recommendation: the fields judged at ``now_ms``."""
    snapshot = state.health if state else None
    fresh = health.freshness(snapshot, now_ms=now_ms, stale_after_ms=stale_after_ms)
    return {
        "recommendation": health.gate_recommendation(verdict, fresh, snapshot is not None),
        "rollout_gate": health.rollout_gate(verdict, fresh),
        "updated_unix_ms": fresh.updated_unix_ms,
        "state_age_ms": fresh.state_age_ms,
        "stale_after_ms": fresh.stale_after_ms,
        "stale": fresh.stale,
    }


def transport_health(
    state_dir: Path | str,
    *,
    now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
) -> TransportHealthReport:
    """Health, freshness and gate of a state dir. Raises StateError on a corrupt state."""
    state_dir = Path(state_dir)
    state = read_state(state_dir)  # health needs no event files
    now = wall_clock_ms() if now_ms is None else now_ms
    verdict, fields = _static_health_fields(state_dir, state)
    timed = _timed_health_fields(state, verdict, now_ms=now, stale_after_ms=stale_after_ms)
    return TransportHealthReport.model_validate({**fields, **timed})


def _count(values: list[object]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(str(x) for x in values).items())}


@dataclass(frozen=True)
class StatusInputs:
    """What the reports read from a state dir, before the clock is consulted.

    Reading is the slow part (state.json and every event file); freshness and
    the gate depend on the current time. Keeping the two apart lets a poller
    (the gateway) read once per file change and still judge freshness anew
    on every request.
    """

    state_dir: Path
    state: DeploymentState | None
    verdict: health.HealthVerdict
    health_fields: Mapping[str, object]
    counts: Mapping[str, object]


def read_status_inputs(state_dir: Path | str) -> StatusInputs:
    """Read state.json and all event files once. Raises StateError on a corrupt state."""
    state_dir = Path(state_dir)
    paths = StatePaths(state_dir)
    state = read_state(state_dir)
    rollouts = state.rollouts if state else []
    reason_counts: Counter[str] = Counter()
    cycles = invalid = 0
    last_codes: list[str] = []
    files = rotated_files(paths.events)
    for path in files:
        records, bad = read_event_file(path)
        invalid += bad
        for record in records:
            codes = record["reason_codes"]
            cycles += 1
            reason_counts.update(codes)
            last_codes = codes
    wasm = sum(1 for r in rollouts if r.deploy_target == "wasm")
    counts: dict[str, object] = {
        "events_path": str(paths.events),
        "processed_case_count": len(state.processed_case_keys) if state else 0,
        "rollout_count": len(rollouts),
        "wasm_rollout_count": wasm,
        "cloud_rollout_count": len(rollouts) - wasm,
        "wasm_deliverable_count": len(state.wasm_deliverables) if state else 0,
        "total_replicas": sum(r.replicas for r in rollouts),
        "deploy_target_counts": _count([r.deploy_target for r in rollouts]),
        "runtime_profile_counts": _count([r.runtime_profile for r in rollouts]),
        "environment_counts": _count([r.environment for r in rollouts]),
        "outcome_counts": _count([r.outcome for r in rollouts]),
        "status_code_counts": _count([r.status_code for r in rollouts]),
        "error_code_counts": _count([r.error_code for r in rollouts if r.error_code]),
        "cycle_reports": cycles,
        "invalid_cycle_reports": invalid,
        "event_files": len(files),
        "reason_code_counts": dict(sorted(reason_counts.items())),
        "last_reason_codes": last_codes,
    }
    verdict, health_fields = _static_health_fields(state_dir, state)
    return StatusInputs(state_dir=state_dir, state=state, verdict=verdict,
                        health_fields=health_fields, counts=counts)


def transport_health_at(
    inputs: StatusInputs, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS
) -> TransportHealthReport:
    """Transport health of already-read inputs, judged at ``now_ms``."""
    timed = _timed_health_fields(inputs.state, inputs.verdict, now_ms=now_ms,
                                 stale_after_ms=stale_after_ms)
    return TransportHealthReport.model_validate({**inputs.health_fields, **timed})


def deployment_status_at(
    inputs: StatusInputs, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS
) -> DeploymentStatusReport:
    """Deployment status of already-read inputs, judged at ``now_ms``."""
    timed = _timed_health_fields(inputs.state, inputs.verdict, now_ms=now_ms,
                                 stale_after_ms=stale_after_ms)
    return DeploymentStatusReport.model_validate({**inputs.health_fields, **timed,
                                                  **inputs.counts})


def deployment_status(
    state_dir: Path | str,
    *,
    now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
) -> DeploymentStatusReport:
    """Everything an operator checks before promotion, from state and all event files."""
    inputs = read_status_inputs(state_dir)
    now = wall_clock_ms() if now_ms is None else now_ms
    return deployment_status_at(inputs, now_ms=now, stale_after_ms=stale_after_ms)
