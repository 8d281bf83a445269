"""Transport health and deployment status reports (SPEC section 4, runbook 'Health').

Both documents have the seed's shapes (a transport health row with a nested
``health{}``; a deployment status with ``target_counts``,
``events_log_path``, ``events_log_present`` and ``health{}``) plus tau-ops's
added fields: the rollout gate and its reasons, freshness, the pause, the
recommendation. Every verdict comes from :func:`tau_ops.health.gate_decision`.

Both are computed from the files alone, never changing them, so the CLI, the
gateway and notebooks can call them at any time, even while a runner holds
the lock. A ``state.json`` that cannot be parsed, or whose health values no
runner could have written, is a :class:`~tau_ops.errors.StateError`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tau_ops import health
from tau_ops.clock import wall_clock_ms
from tau_ops.errors import StateError
from tau_ops.events import read_event_file
from tau_ops.jsonio import LIMITS, MAX_UNIX_MS, is_json_int, parse_json, read_bounded
from tau_ops.models import DeploymentState, HealthSnapshot
from tau_ops.readview import read_consistently
from tau_ops.state import StatePaths, committed_sizes, read_state
from tau_ops.status_models import (
    DeploymentStatusReport,
    PauseInfo,
    TransportHealthReport,
)
from tau_ops.storage import rotated_files
from tau_ops.timefmt import iso_utc

__all__ = [
    "DeploymentStatusReport",
    "PauseInfo",
    "StatusInputs",
    "TransportHealthReport",
    "decide",
    "deployment_status",
    "deployment_status_at",
    "read_pause",
    "read_status_inputs",
    "transport_health",
    "transport_health_at",
    "verdict_fields",
]

TRANSPORT = "deployment"
TARGET = "cloud-and-wasm-runtime"


def read_pause(state_dir: Path | str) -> health.PauseMarker | None:
    """The pause marker of ``state_dir``, or None when the runner is not paused.

    An unreadable or malformed marker still means paused (fields unknown).

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.

    Returns
    -------
    PauseMarker or None
        Who paused it, when (Unix ms) and why, as far as the marker says.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.ops import pause_runner
    >>> state_dir = tempfile.mkdtemp()
    >>> read_pause(state_dir) is None
    True
    >>> _ = pause_runner(state_dir, reason="maintenance", clock=lambda: 1_000)
    >>> marker = read_pause(state_dir)
    >>> marker.paused_unix_ms, marker.reason
    (1000, 'maintenance')
    """
    path = StatePaths(Path(state_dir)).pause_marker
    try:
        data = parse_json(read_bounded(path, max_bytes=LIMITS["pause_marker"],
                                       what="pause marker"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return health.PauseMarker()
    if not isinstance(data, dict):
        return health.PauseMarker()
    when = data.get("paused_unix_ms")
    who, why = data.get("paused_by"), data.get("reason")
    valid_when = is_json_int(when) and isinstance(when, int) and 0 < when <= MAX_UNIX_MS
    return health.PauseMarker(
        paused_unix_ms=when if valid_when else None,
        paused_by=who if isinstance(who, str) and who else None,
        reason=why if isinstance(why, str) and why else None,
    )


@dataclass(frozen=True)
class StatusInputs:
    """What the reports read from a state dir, before the clock is consulted.

    Reading is the slow part (state.json and every event file); freshness and
    the gate depend on the current time. Keeping the two apart lets a poller
    (the gateway) read once per file change and still judge freshness anew
    on every request.

    Attributes
    ----------
    state_dir : Path
        The deployment state dir read.
    state : DeploymentState or None
        ``state.json``, or None when there is none.
    pause : PauseMarker or None
        The pause marker, or None when not paused.
    counts : dict
        The deployment-status counters (rollouts per target, cycle reports...).

    Examples
    --------
    >>> import tempfile
    >>> inputs = read_status_inputs(tempfile.mkdtemp())
    >>> inputs.state, inputs.counts["cycle_reports"]
    (None, 0)
    """

    state_dir: Path
    state: DeploymentState | None
    pause: health.PauseMarker | None
    counts: dict[str, object]


def _read_valid_state(state_dir: Path) -> DeploymentState | None:
    state = read_state(state_dir)
    problems = health.snapshot_problems(state.health if state else None)
    if problems:
        path = StatePaths(state_dir).state
        raise StateError(f"state file {path} has impossible health values: "
                         + "; ".join(problems), path=path)
    return state


def _count(values: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(v for v in values if v).items()))


def _rollout_counts(state: DeploymentState | None) -> dict[str, object]:
    """The seed's rollout counters: names trimmed (targets, runtimes, envs lower-cased)."""
    rollouts = state.rollouts if state else []
    targets = [r.deploy_target.strip().lower() for r in rollouts]
    wasm = sum(1 for t in targets if t == "wasm")
    return {
        "processed_case_count": len(state.processed_case_keys) if state else 0,
        "rollout_count": len(rollouts),
        "target_counts": _count(targets),
        "runtime_profile_counts": _count([r.runtime_profile.strip().lower() for r in rollouts]),
        "environment_counts": _count([r.environment.strip().lower() for r in rollouts]),
        "outcome_counts": _count([r.outcome.strip() for r in rollouts]),
        "status_code_counts": _count([str(r.status_code) for r in rollouts if r.status_code > 0]),
        "error_code_counts": _count([r.error_code.strip() for r in rollouts]),
        "total_replicas": sum(r.replicas for r in rollouts),
        "wasm_rollout_count": wasm,
        "cloud_rollout_count": sum(1 for t in targets if t and t != "wasm"),
        "wasm_deliverable_count": len(state.wasm_deliverables) if state else 0,
    }


def read_status_inputs(state_dir: Path | str) -> StatusInputs:
    """Read state.json, the pause marker and all event files once, as one consistent view.

    Only committed cycles count: the read is retried when a writer rotated or
    committed meanwhile, and lines of an uncommitted cycle are left out.

    Raises
    ------
    StateError
        ``state.json`` cannot be parsed, holds health values no runner could
        have written (:func:`tau_ops.health.snapshot_problems`), or the files
        never held still long enough to read.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.

    Returns
    -------
    StatusInputs
        State, pause marker and event counts, to judge with :func:`decide`.

    Examples
    --------
    >>> import tempfile
    >>> read_status_inputs(tempfile.mkdtemp()).pause is None
    True
    """
    state_dir = Path(state_dir)
    paths = StatePaths(state_dir)

    def listing() -> list[Path]:
        return [paths.state, paths.journal, *rotated_files(paths.events)]

    return read_consistently(listing, lambda _files: _read_status_inputs(state_dir),
                             what=f"state dir {state_dir}")


def _read_status_inputs(state_dir: Path) -> StatusInputs:
    paths = StatePaths(state_dir)
    state = _read_valid_state(state_dir)
    committed = committed_sizes(state_dir)
    reason_counts: Counter[str] = Counter()
    cycles = invalid = 0
    last_codes: list[str] = []
    files = rotated_files(paths.events)
    for path in files:
        records, bad = read_event_file(path, committed.get(path))
        invalid += bad
        for record in records:
            codes = record["reason_codes"]
            cycles += 1
            reason_counts.update(c.strip() for c in codes if c.strip())
            last_codes = codes
    counts: dict[str, object] = {
        "events_log_path": str(paths.events),
        "events_log_present": paths.events.exists(),
        **_rollout_counts(state),
        "cycle_reports": cycles,
        "invalid_cycle_reports": invalid,
        "event_files": len(files),
        "reason_code_counts": dict(sorted(reason_counts.items())),
        "last_reason_codes": last_codes,
    }
    return StatusInputs(state_dir=state_dir, state=state, pause=read_pause(state_dir),
                        counts=counts)


def decide(
    inputs: StatusInputs, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> health.GateDecision:
    """The gate decision of already-read inputs at ``now_ms`` (:func:`health.gate_decision`).

    Parameters
    ----------
    inputs : StatusInputs
        What :func:`read_status_inputs` read.
    now_ms : int
        The time to judge at, Unix time in milliseconds.
    stale_after_ms : int
        Age limit of the last cycle, milliseconds (default 24 h).
    skew_tolerance_ms : int
        How far ahead of ``now_ms`` a last cycle may be, milliseconds (default 5 min).

    Returns
    -------
    GateDecision
        The rollout gate, its reasons and the freshness figures.

    Examples
    --------
    >>> import tempfile
    >>> decide(read_status_inputs(tempfile.mkdtemp()), now_ms=0).rollout_gate_reasons
    ['no_cycle']
    """
    return health.gate_decision(
        inputs.state.health if inputs.state else None, now_ms=now_ms,
        stale_after_ms=stale_after_ms, skew_tolerance_ms=skew_tolerance_ms, pause=inputs.pause)


def verdict_fields(decision: health.GateDecision, state_dir: Path, *,
                   state_exists: bool) -> dict[str, object]:
    """The added fields every status document carries, rendered from one decision.

    Parameters
    ----------
    decision : GateDecision
        The decision to render.
    state_dir : Path
        The state dir it was made for.
    state_exists : bool
        Whether ``state.json`` exists.

    Returns
    -------
    dict
        ``health_state``, ``rollout_gate``, ``rollout_gate_reasons``, freshness
        (``state_age_ms``, ``stale``, ``clock_skew_ms``, milliseconds) and ``pause``.

    Examples
    --------
    >>> from pathlib import Path
    >>> decision = health.gate_decision(None, now_ms=0)
    >>> verdict_fields(decision, Path("st"), state_exists=False)["rollout_gate"]
    'hold'
    """
    pause = decision.pause
    return {
        "health_state": decision.health_state,
        "health_reason": decision.health_reason,
        "rollout_gate": decision.rollout_gate,
        "rollout_gate_reasons": list(decision.rollout_gate_reasons),
        "rollout_gate_reason": decision.reason,
        "recommendation": decision.recommendation,
        "state_dir": str(state_dir),
        "state_exists": state_exists,
        "judged_unix_ms": decision.judged_unix_ms,
        "updated_utc": iso_utc(decision.updated_unix_ms) if decision.has_cycle else None,
        "state_age_ms": decision.state_age_ms,
        "stale_after_ms": decision.stale_after_ms,
        "stale": decision.stale,
        "clock_skew_ms": decision.clock_skew_ms,
        "clock_skew_tolerance_ms": decision.clock_skew_tolerance_ms,
        "runner_paused": decision.runner_paused,
        "pause": None if pause is None else PauseInfo(
            paused_unix_ms=pause.paused_unix_ms,
            paused_utc=iso_utc(pause.paused_unix_ms) if pause.paused_unix_ms else None,
            paused_by=pause.paused_by, reason=pause.reason),
    }


def transport_health_at(
    inputs: StatusInputs, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> TransportHealthReport:
    """Transport health of already-read inputs, judged at ``now_ms`` (unix ms).

    Parameters
    ----------
    inputs : StatusInputs
        What :func:`read_status_inputs` read.
    now_ms : int
        The time to judge at, Unix time in milliseconds.
    stale_after_ms : int
        Age limit of the last cycle, milliseconds (default 24 h).
    skew_tolerance_ms : int
        How far ahead of ``now_ms`` a last cycle may be, milliseconds (default 5 min).

    Returns
    -------
    TransportHealthReport
        The seed's row plus the gate decision.

    Examples
    --------
    >>> import tempfile
    >>> inputs = read_status_inputs(tempfile.mkdtemp())
    >>> transport_health_at(inputs, now_ms=0).target
    'cloud-and-wasm-runtime'
    """
    decision = decide(inputs, now_ms=now_ms, stale_after_ms=stale_after_ms,
                      skew_tolerance_ms=skew_tolerance_ms)
    return TransportHealthReport.model_validate({
        "transport": TRANSPORT, "target": TARGET,
        "state_path": str(StatePaths(inputs.state_dir).state),
        "health": inputs.state.health if inputs.state else HealthSnapshot(),
        **verdict_fields(decision, inputs.state_dir, state_exists=inputs.state is not None),
    })


def deployment_status_at(
    inputs: StatusInputs, *, now_ms: int, stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> DeploymentStatusReport:
    """Deployment status of already-read inputs, judged at ``now_ms`` (unix ms).

    Parameters
    ----------
    inputs : StatusInputs
        What :func:`read_status_inputs` read.
    now_ms : int
        The time to judge at, Unix time in milliseconds.
    stale_after_ms : int
        Age limit of the last cycle, milliseconds (default 24 h).
    skew_tolerance_ms : int
        How far ahead of ``now_ms`` a last cycle may be, milliseconds (default 5 min).

    Returns
    -------
    DeploymentStatusReport
        The seed's status document plus the gate decision.

    Examples
    --------
    >>> import tempfile
    >>> inputs = read_status_inputs(tempfile.mkdtemp())
    >>> deployment_status_at(inputs, now_ms=0).rollout_gate
    'hold'
    """
    decision = decide(inputs, now_ms=now_ms, stale_after_ms=stale_after_ms,
                      skew_tolerance_ms=skew_tolerance_ms)
    return DeploymentStatusReport.model_validate({
        "state_path": str(StatePaths(inputs.state_dir).state),
        "health": inputs.state.health if inputs.state else HealthSnapshot(),
        **inputs.counts,
        **verdict_fields(decision, inputs.state_dir, state_exists=inputs.state is not None),
    })


def transport_health(
    state_dir: Path | str,
    *,
    now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> TransportHealthReport:
    """Health, freshness and gate of a state dir (reads ``state.json`` and the pause marker).

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.
    now_ms : int, optional
        The time to judge freshness at, unix ms (default: the wall clock).
    stale_after_ms : int
        Age limit of the last cycle, milliseconds (default 24 h).
    skew_tolerance_ms : int
        How far ahead of ``now_ms`` a last cycle may be, milliseconds (default 5 min).

    Returns
    -------
    TransportHealthReport
        The seed's row (``transport``, ``target``, ``state_path``,
        ``health{}``) plus the gate decision.

    Raises
    ------
    StateError
        ``state.json`` is corrupt or holds impossible health values.

    Examples
    --------
    >>> import tempfile
    >>> transport_health(tempfile.mkdtemp(), now_ms=0).rollout_gate_reasons
    ['no_cycle']
    """
    state_dir = Path(state_dir)
    inputs = StatusInputs(state_dir=state_dir, state=_read_valid_state(state_dir),
                          pause=read_pause(state_dir), counts={})
    now = wall_clock_ms() if now_ms is None else now_ms
    return transport_health_at(inputs, now_ms=now, stale_after_ms=stale_after_ms,
                               skew_tolerance_ms=skew_tolerance_ms)


def deployment_status(
    state_dir: Path | str,
    *,
    now_ms: int | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> DeploymentStatusReport:
    """Everything an operator checks before promotion, from state, pause marker and event files.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.
    now_ms : int, optional
        The time to judge freshness at, unix ms (default: the wall clock).
    stale_after_ms : int
        Age limit of the last cycle, milliseconds (default 24 h).
    skew_tolerance_ms : int
        How far ahead of ``now_ms`` a last cycle may be, milliseconds (default 5 min).

    Returns
    -------
    DeploymentStatusReport
        The seed's status document plus the gate decision.

    Raises
    ------
    StateError
        ``state.json`` is corrupt or holds impossible health values, or the
        files kept changing while being read.

    Examples
    --------
    >>> import tempfile
    >>> report = deployment_status(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> report.rollout_gate, report.rollout_gate_reasons, report.events_log_present
    ('hold', ['no_cycle'], False)
    """
    inputs = read_status_inputs(state_dir)
    now = wall_clock_ms() if now_ms is None else now_ms
    return deployment_status_at(inputs, now_ms=now, stale_after_ms=stale_after_ms,
                                skew_tolerance_ms=skew_tolerance_ms)
