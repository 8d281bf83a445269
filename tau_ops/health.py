"""Health classification, snapshot validity, the runbook actions and the one rollout-gate decision.

All of SPEC section 4's judgement lives here, as pure functions of a
:class:`~tau_ops.models.HealthSnapshot`, a pause marker and a clock reading.
:func:`gate_decision` is the only place that decides ``pass``/``hold`` and
its ``rollout_gate_reasons``; transport health, deployment status, ``gate``,
``diagnose``, ``report``, the gateway and the widgets all render its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tau_ops.jsonio import MAX_UNIX_MS
from tau_ops.models import HealthSnapshot, HealthState, RolloutGate
from tau_ops.timefmt import describe_ms, duration_text, when_text

FAILING_STREAK = 3
DEFAULT_STALE_AFTER_MS = 24 * 60 * 60 * 1000
DEFAULT_CLOCK_SKEW_TOLERANCE_MS = 5 * 60 * 1000

GATE_REASONS: tuple[str, ...] = (
    "invalid_state",
    "no_cycle",
    "runner_paused",
    "clock_skew",
    "stale_state",
    "health_failing",
    "health_degraded",
)
"""Every ``rollout_gate_reasons`` code, in the order they are listed."""

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
    "runner_paused": (
        "keep promotion paused; when the pause reason is resolved, run tau-ops runner resume "
        "and record a new cycle"
    ),
    "clock_skew": (
        "fix the clock of the runner host or of this host (NTP), then record a new cycle"
    ),
    "invalid_state": (
        "do not promote; restore state.json from a snapshot (tau-ops snapshot) or move it "
        "aside and record a new cycle"
    ),
    "healthy": "no action needed; promotion can continue",
}
"""The one mapping from a symptom (reason code, health state or gate reason) to its action.

The first eight are the runbook's troubleshooting table; ``runner_paused``,
``clock_skew`` and ``invalid_state`` are tau-ops's own holds. ``healthy`` is
used only when the gate passes.
"""

_GATE_ACTION = {
    "invalid_state": "invalid_state",
    "no_cycle": "no_cycle",
    "runner_paused": "runner_paused",
    "clock_skew": "clock_skew",
    "stale_state": "stale",
    "health_failing": "failing",
}


@dataclass(frozen=True)
class HealthVerdict:
    """Health state with its one-line reason and the runbook action to take.

    Attributes
    ----------
    state : str
        ``healthy``, ``degraded`` or ``failing``.
    reason : str
        One line saying why.
    recommendation : str
        The runbook's troubleshooting action for this state.

    Examples
    --------
    >>> classify(None)
    HealthVerdict(state='healthy', reason='no deployment cycle recorded yet', \
recommendation='run --deployment-contract-runner once to record a cycle')
    """

    state: HealthState
    reason: str
    recommendation: str


def has_cycle(snapshot: HealthSnapshot | None) -> bool:
    """True when ``snapshot`` records a cycle (the default snapshot has ``updated_unix_ms`` 0).

    Parameters
    ----------
    snapshot : HealthSnapshot or None
        The stored health; None means no ``state.json``.

    Returns
    -------
    bool
        Whether ``updated_unix_ms`` is positive.

    Examples
    --------
    >>> has_cycle(HealthSnapshot()), has_cycle(HealthSnapshot(updated_unix_ms=5))
    (False, True)
    """
    return snapshot is not None and snapshot.updated_unix_ms > 0


def classify(snapshot: HealthSnapshot | None) -> HealthVerdict:
    """Classify a snapshot: failing (streak >= 3), degraded, or healthy (SPEC section 4).

    Parameters
    ----------
    snapshot : HealthSnapshot or None
        The last cycle's health; None or the default snapshot means no cycle yet.

    Returns
    -------
    HealthVerdict
        State, one-line reason and the runbook action for the health alone
        (freshness, pause and clock are judged by :func:`gate_decision`).

    Examples
    --------
    >>> classify(HealthSnapshot(updated_unix_ms=1, failure_streak=3, last_cycle_failed=1,
    ...                         last_cycle_processed=1, last_cycle_discovered=1)).state
    'failing'
    """
    if not has_cycle(snapshot):
        return HealthVerdict("healthy", "no deployment cycle recorded yet", ACTIONS["no_cycle"])
    assert snapshot is not None
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


def snapshot_problems(snapshot: HealthSnapshot | None) -> list[str]:
    """Why ``snapshot`` cannot have been written by a runner cycle (empty when it is possible).

    The rules come from SPEC section 4 and the seed's runtime: no counter is
    negative; ``updated_unix_ms`` is at most 9999-12-31; processed = completed
    + failed + duplicates; malformed <= completed; processed + queue_depth =
    discovered (every queued case is handled, the rest is backlog);
    ``failure_streak`` is positive exactly when the cycle had failed cases;
    and the default snapshot (no cycle) has every counter 0.

    Parameters
    ----------
    snapshot : HealthSnapshot or None
        The health stored in ``state.json`` (None: no state, nothing to check).

    Returns
    -------
    list of str
        One short description per broken rule, in a stable order.

    Examples
    --------
    >>> snapshot_problems(HealthSnapshot(updated_unix_ms=1, failure_streak=-3))
    ['failure_streak=-3 is negative']
    """
    if snapshot is None:
        return []
    values = snapshot.model_dump(include=set(HealthSnapshot.model_fields))
    problems = [f"{name}={value} is negative" for name, value in values.items() if value < 0]
    if problems:
        return problems
    s = snapshot
    if s.updated_unix_ms > MAX_UNIX_MS:
        problems.append(f"updated_unix_ms={s.updated_unix_ms} is past year 9999")
    if not has_cycle(s):
        if any(values.values()):
            problems.append("counters are set but updated_unix_ms=0 (no cycle)")
        return problems
    if s.last_cycle_processed != s.last_cycle_completed + s.last_cycle_failed \
            + s.last_cycle_duplicates:
        problems.append(
            f"last_cycle_processed={s.last_cycle_processed} is not completed + failed + "
            f"duplicates ({s.last_cycle_completed} + {s.last_cycle_failed} + "
            f"{s.last_cycle_duplicates})")
    if s.last_cycle_malformed > s.last_cycle_completed:
        problems.append(f"last_cycle_malformed={s.last_cycle_malformed} exceeds "
                        f"last_cycle_completed={s.last_cycle_completed}")
    if s.last_cycle_processed + s.queue_depth != s.last_cycle_discovered:
        problems.append(
            f"last_cycle_discovered={s.last_cycle_discovered} is not processed + queue_depth "
            f"({s.last_cycle_processed} + {s.queue_depth})")
    if (s.failure_streak > 0) != (s.last_cycle_failed > 0):
        problems.append(f"failure_streak={s.failure_streak} does not match "
                        f"last_cycle_failed={s.last_cycle_failed}")
    return problems


@dataclass(frozen=True)
class PauseMarker:
    """What ``runner-paused.json`` says: who paused the runner, when (unix ms) and why.

    Attributes
    ----------
    paused_unix_ms : int or None
        When the runner was paused, Unix time in milliseconds (UTC); None when unknown.
    paused_by : str or None
        Who paused it; None when unknown.
    reason : str or None
        Why; None when unknown.

    Examples
    --------
    >>> PauseMarker(paused_by="ops", reason="maintenance").describe(now_ms=0)
    'runner paused by ops: maintenance'
    """

    paused_unix_ms: int | None = None
    paused_by: str | None = None
    reason: str | None = None

    def describe(self, now_ms: int) -> str:
        """One line: ``runner paused by ops at 2026-...Z (2 hours ago): maintenance``."""
        who = f" by {self.paused_by}" if self.paused_by else ""
        when = f" at {when_text(self.paused_unix_ms, now_ms)}" if self.paused_unix_ms else ""
        why = f": {self.reason}" if self.reason else ""
        return f"runner paused{who}{when}{why}"


@dataclass(frozen=True)
class GateDecision:
    """The rollout gate, every reason it holds, and what to tell the operator.

    ``health_state``/``health_reason`` describe the last cycle's health alone;
    ``reason`` explains the whole decision in one line and ``recommendation``
    is the action for its first reason (the promotion action only on ``pass``).
    Built by :func:`gate_decision`; the status reports render its fields.

    Attributes
    ----------
    rollout_gate : str
        ``pass`` or ``hold``.
    rollout_gate_reasons : list of str
        Reason codes in :data:`GATE_REASONS` order; empty exactly on ``pass``.
    health_state, health_reason : str
        The last cycle's health and why.
    reason, recommendation : str
        One line explaining the decision; the action for its first reason.
    has_cycle : bool
        Whether a cycle was ever recorded.
    judged_unix_ms, updated_unix_ms : int
        When the decision was made and when the last cycle ended, Unix ms (UTC).
    state_age_ms, stale_after_ms : int
        Age of the last cycle and the age limit, milliseconds.
    stale : bool
        Whether the age is over the limit.
    clock_skew_ms, clock_skew_tolerance_ms : int
        How far the last cycle lies in the future and how far it may, milliseconds.
    runner_paused : bool
        Whether the runner is paused.
    pause : PauseMarker or None
        The pause marker, when paused.
    invalid_problems : list of str
        Why the state is invalid (empty unless ``invalid_state``).

    Examples
    --------
    >>> decision = gate_decision(None, now_ms=1_700_000_000_000, pause=PauseMarker())
    >>> decision.rollout_gate, decision.rollout_gate_reasons
    ('hold', ['no_cycle', 'runner_paused'])
    """

    rollout_gate: RolloutGate
    rollout_gate_reasons: list[str]
    health_state: HealthState
    health_reason: str
    reason: str
    recommendation: str
    has_cycle: bool
    judged_unix_ms: int
    updated_unix_ms: int
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    clock_skew_ms: int
    clock_skew_tolerance_ms: int
    runner_paused: bool
    pause: PauseMarker | None = None
    invalid_problems: list[str] = field(default_factory=list)


def gate_decision(
    snapshot: HealthSnapshot | None,
    *,
    now_ms: int,
    stale_after_ms: int = DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
    pause: PauseMarker | None = None,
    invalid: str | None = None,
) -> GateDecision:
    """Decide the rollout gate: the one function every surface renders.

    Parameters
    ----------
    snapshot : HealthSnapshot or None
        The stored health (None or the default snapshot: no cycle yet).
    now_ms : int
        The current time, unix milliseconds.
    stale_after_ms : int
        A last cycle older than this (milliseconds) is stale; exactly at the
        limit is still fresh.
    skew_tolerance_ms : int
        How far in the future (milliseconds) a last cycle may lie before the
        clocks are judged skewed.
    pause : PauseMarker or None
        The runner's pause marker, when the runner is paused.
    invalid : str or None
        Why the state could not be read at all (a corrupt ``state.json``);
        the snapshot's own impossible values are found here too.

    Returns
    -------
    GateDecision
        ``pass`` only when ``rollout_gate_reasons`` is empty. With an invalid
        state the only other reason listed is ``runner_paused``: nothing else
        can be judged from values that cannot be trusted.

    Examples
    --------
    >>> ok = HealthSnapshot(updated_unix_ms=1_000, last_cycle_discovered=1,
    ...                     last_cycle_processed=1, last_cycle_completed=1)
    >>> gate_decision(ok, now_ms=2_000).rollout_gate
    'pass'
    >>> gate_decision(ok, now_ms=2_000, pause=PauseMarker(reason="freeze")).rollout_gate_reasons
    ['runner_paused']
    """
    problems = [invalid] if invalid else snapshot_problems(snapshot)
    cycle = has_cycle(snapshot) and not problems
    shown = snapshot if snapshot is not None and not problems else HealthSnapshot()
    verdict = classify(shown)
    updated = shown.updated_unix_ms
    ahead = updated - now_ms if cycle else 0
    age = max(0, now_ms - updated) if cycle else 0
    skewed = cycle and ahead > skew_tolerance_ms
    stale = not cycle or (age > stale_after_ms)
    phrases: dict[str, str] = {}
    if problems:
        phrases["invalid_state"] = "state is invalid: " + "; ".join(problems)
    elif not cycle:
        phrases["no_cycle"] = "no deployment cycle recorded yet"
    if pause is not None:
        phrases["runner_paused"] = pause.describe(now_ms)
    if not problems and cycle:
        if skewed:
            phrases["clock_skew"] = (
                f"state is from the future: last cycle at {describe_ms(updated)}, "
                f"{duration_text(ahead)} ahead of this clock (tolerance "
                f"{duration_text(skew_tolerance_ms)})")
        elif stale:
            phrases["stale_state"] = (
                f"state is stale: last cycle at {when_text(updated, now_ms)} "
                f"(limit {duration_text(stale_after_ms)})")
        if verdict.state == "failing":
            phrases["health_failing"] = f"health is failing: {verdict.reason}"
        elif verdict.state == "degraded":
            phrases["health_degraded"] = f"health is degraded: {verdict.reason}"
    reasons = [code for code in GATE_REASONS if code in phrases]
    if reasons:
        first = reasons[0]
        action = (verdict.recommendation if first == "health_degraded"
                  else ACTIONS[_GATE_ACTION[first]])
        reason = "; ".join(phrases[code] for code in reasons)
    else:
        action, reason = verdict.recommendation, verdict.reason
    return GateDecision(
        rollout_gate="hold" if reasons else "pass",
        rollout_gate_reasons=reasons,
        health_state=verdict.state,
        health_reason=verdict.reason if not problems else "state is invalid",
        reason=reason,
        recommendation=action,
        has_cycle=cycle,
        judged_unix_ms=now_ms,
        updated_unix_ms=updated,
        state_age_ms=age,
        stale_after_ms=stale_after_ms,
        stale=stale,
        clock_skew_ms=max(0, ahead),
        clock_skew_tolerance_ms=skew_tolerance_ms,
        runner_paused=pause is not None,
        pause=pause,
        invalid_problems=problems,
    )
