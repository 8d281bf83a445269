"""Health classification, operator recommendations, freshness and the rollout gate.

All of SPEC section 4's judgement lives here, as pure functions of a
:class:`~tau_ops.models.HealthSnapshot` and a clock reading, so the CLI, the
gateway, the widgets and the promotion gate all reach the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from tau_ops.models import HealthSnapshot, HealthState, RolloutGate

FAILING_STREAK = 3
DEFAULT_STALE_AFTER_MS = 24 * 60 * 60 * 1000

ACTIONS: dict[str, str] = {
    "case_processing_failed": (
        "inspect runtime-events.jsonl, then verify fixture expectations and runtime support"
    ),
    "malformed_inputs_observed": (
        "inspect fixture records for invalid deploy target/runtime combinations"
    ),
    "retry_attempted": "verify retryable failure simulation and retry policy settings",
    "retryable_failures_observed": "verify retryable failure simulation and retry policy settings",
    "failing": (
        "treat as rollout gate failure; pause promotion and investigate repeated failures"
    ),
    "stale": "run the deterministic demo and re-check deployment-status-inspect freshness fields",
    "no_cycle": "run --deployment-contract-runner once to record a cycle",
    "queue_backpressure_applied": (
        "reduce per-cycle fixture volume or increase --deployment-queue-limit"
    ),
    "healthy": "no action needed; promotion can continue",
}


@dataclass(frozen=True)
class HealthVerdict:
    """Health state with its one-line reason and the runbook action to take."""

    state: HealthState
    reason: str
    recommendation: str


def classify(snapshot: HealthSnapshot | None) -> HealthVerdict:
    """Classify a snapshot: failing (streak >= 3), degraded, or healthy."""
    if snapshot is None:
        return HealthVerdict("healthy", "no deployment cycle recorded yet", ACTIONS["no_cycle"])
    if snapshot.failure_streak >= FAILING_STREAK:
        return HealthVerdict(
            "failing",
            f"failure_streak={snapshot.failure_streak} reached the failing threshold "
            f"({FAILING_STREAK} consecutive cycles with failed cases)",
            ACTIONS["failing"],
        )
    problems: list[str] = []
    action = ""
    if snapshot.last_cycle_failed > 0:
        problems.append(f"{snapshot.last_cycle_failed} failed case(s)")
        action = action or ACTIONS["case_processing_failed"]
    if snapshot.last_cycle_malformed > 0:
        problems.append(f"{snapshot.last_cycle_malformed} malformed input(s)")
        action = action or ACTIONS["malformed_inputs_observed"]
    if snapshot.last_cycle_retries > 0:
        problems.append(f"{snapshot.last_cycle_retries} retry attempt(s)")
        action = action or ACTIONS["retry_attempted"]
    if snapshot.failure_streak > 0 and not problems:
        problems.append(f"failure_streak={snapshot.failure_streak}")
        action = ACTIONS["case_processing_failed"]
    if problems:
        streak = f" (failure_streak={snapshot.failure_streak})" if snapshot.failure_streak else ""
        return HealthVerdict(
            "degraded", "last cycle had " + ", ".join(problems) + streak, action
        )
    if snapshot.queue_depth > 0:
        return HealthVerdict(
            "healthy",
            f"last cycle completed cleanly with {snapshot.queue_depth} case(s) left in backlog",
            ACTIONS["queue_backpressure_applied"],
        )
    return HealthVerdict(
        "healthy", "last cycle completed with no failures, malformed inputs or retries",
        ACTIONS["healthy"],
    )


@dataclass(frozen=True)
class Freshness:
    """How old the last cycle is, and whether that is too old to trust."""

    updated_unix_ms: int
    state_age_ms: int
    stale_after_ms: int
    stale: bool


def freshness(
    snapshot: HealthSnapshot | None, *, now_ms: int, stale_after_ms: int = DEFAULT_STALE_AFTER_MS
) -> Freshness:
    """Age of the last cycle; a state with no cycle counts as stale."""
    if snapshot is None or snapshot.updated_unix_ms <= 0:
        return Freshness(0, 0, stale_after_ms, True)
    age = max(0, now_ms - snapshot.updated_unix_ms)
    return Freshness(snapshot.updated_unix_ms, age, stale_after_ms, age > stale_after_ms)


def rollout_gate(verdict: HealthVerdict, fresh: Freshness) -> RolloutGate:
    """``pass`` only for a healthy, fresh state; anything else holds promotion."""
    return "pass" if verdict.state == "healthy" and not fresh.stale else "hold"


def gate_recommendation(verdict: HealthVerdict, fresh: Freshness, has_cycle: bool) -> str:
    """The action for the whole verdict: staleness outranks a healthy classification."""
    if not has_cycle:
        return ACTIONS["no_cycle"]
    if verdict.state == "healthy" and fresh.stale:
        return ACTIONS["stale"]
    return verdict.recommendation
