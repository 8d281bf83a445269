"""One deployment runner cycle: queue, duplicates, retries, persistence (SPEC section 3).

The cycle evaluates its whole queue (contract-checking every result) before
it changes anything, then commits state, events and channel store through
:func:`tau_ops.state.commit_cycle` while holding the state-dir lock. Clock and
sleeper are parameters so tests never sleep and demos can be deterministic.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, TypeAdapter

from tau_ops import channel_store, health, storage
from tau_ops._gc import paused_gc
from tau_ops.clock import Clock, Sleeper, real_sleep, wall_clock_ms
from tau_ops.contract import (
    ManifestLoader,
    case_key,
    check_expected,
    default_manifest_loader,
    evaluate_case,
    norm,
)
from tau_ops.errors import RunnerPaused, UsageError
from tau_ops.models import (
    CaseResult,
    CycleSummary,
    DeploymentState,
    Fixture,
    FixtureCase,
    HealthSnapshot,
    RolloutRecord,
    RuntimeEvent,
)
from tau_ops.state import (
    Commit,
    StatePaths,
    commit_cycle,
    dump_state,
    load_state_for_update,
    recover,
)

MAX_BACKOFF_EXPONENT = 10


@dataclass(frozen=True)
class RunnerConfig:
    """Options of one cycle; defaults are the runbook's (and the CLI flags').

    Parameters
    ----------
    state_dir : Path or str, default ``.tau/deployment``
        The deployment state dir (``--deployment-state-dir``); created on first write.
    queue_limit : int, default 64
        Cases processed per cycle, at least 1; the rest stays queued (``queue_depth``).
    processed_case_cap : int, default 10000
        Processed case keys kept for duplicate suppression, at least 0 (0 keeps none).
    retry_max_attempts : int, default 4
        Attempts per retryable case in one cycle, at least 1.
    retry_base_delay_ms : int, default 0
        Backoff before the second attempt in milliseconds, doubled per further
        attempt (exponent capped at 10); 0 means no delay.

    Raises
    ------
    UsageError
        A count is below its minimum (the message names the field).

    Examples
    --------
    >>> RunnerConfig(state_dir="st", queue_limit=8).queue_limit
    8
    >>> RunnerConfig(queue_limit=0)
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: queue_limit must be at least 1, got 0
    """

    state_dir: Path | str = Path(".tau/deployment")
    queue_limit: int = 64
    processed_case_cap: int = 10_000
    retry_max_attempts: int = 4
    retry_base_delay_ms: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir))  # accept str paths too
        checks = {
            "queue_limit": self.queue_limit >= 1,
            "processed_case_cap": self.processed_case_cap >= 0,
            "retry_max_attempts": self.retry_max_attempts >= 1,
            "retry_base_delay_ms": self.retry_base_delay_ms >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                minimum = 1 if name in ("queue_limit", "retry_max_attempts") else 0
                raise UsageError(f"{name} must be at least {minimum}, got {getattr(self, name)}")


class CycleReport(CycleSummary):
    """A cycle's counters plus what it concluded: health, reason codes, timings.

    Returned by :func:`run_cycle`; ``--deployment-runner-json`` prints it.
    The counters (``discovered_cases`` ...) are those of
    :class:`~tau_ops.models.CycleSummary`.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import FakeClock, parse_fixture
    >>> fixture = parse_fixture('''{"schema_version": 1, "name": "one", "cases": [
    ...   {"case_id": "c-1", "deploy_target": "kubernetes", "runtime_profile": "native",
    ...    "blueprint_id": "api", "environment": "staging", "region": "iad",
    ...    "container_image": "api:1",
    ...    "expected": {"outcome": "success", "status_code": 202, "response_body": {
    ...      "status": "accepted", "blueprint_id": "api", "deploy_target": "kubernetes",
    ...      "runtime_profile": "native", "environment": "staging", "region": "iad",
    ...      "replicas": 1, "rollout_strategy": "rolling", "artifact": "api:1"}}}]}''')
    >>> report = run_cycle(fixture, RunnerConfig(state_dir=tempfile.mkdtemp()),
    ...                    clock=FakeClock())
    >>> report.applied_cases, report.reason_codes, report.health_state
    (1, ['cloud_rollout_applied'], 'healthy')
    """

    reason_codes: list[str] = Field(
        description=("The cycle's reason codes, in the fixed order of reason codes "
                     "(``healthy_cycle`` alone when none holds).")
    )
    health_state: str = Field(
        description="Health after the cycle: ``healthy``, ``degraded`` or ``failing``."
    )
    health_reason: str = Field(description="One line saying why the health is what it is.")
    recommendation: str = Field(description="The runbook's troubleshooting action for this health.")
    failure_streak: int = Field(
        description="Consecutive cycles with failed cases, this one included (0 when none failed)."
    )
    queue_depth: int = Field(
        description="Cases left queued for the next cycle (over ``queue_limit``)."
    )
    backlog_cases: int = Field(description="Same as ``queue_depth`` (the event line's name).")
    cycle_duration_ms: int = Field(
        description="Duration of the cycle in milliseconds, by the injected clock."
    )
    timestamp_unix_ms: int = Field(description="End of the cycle, Unix time in milliseconds (UTC).")
    state_path: str = Field(description="Path of the ``state.json`` written.")
    events_path: str = Field(description="Path of the ``runtime-events.jsonl`` appended to.")
    warnings: list[str] = Field(
        default=[],
        description=("Problems after the commit that did not undo it (for example a journal that "
                     "could not be removed).")
    )


def backoff_delay_ms(base_ms: int, attempt: int) -> int:
    """Delay after failed attempt ``attempt`` (1-based): ``base * 2^(attempt-1)``, capped.

    Parameters
    ----------
    base_ms : int
        ``retry_base_delay_ms``, milliseconds.
    attempt : int
        The attempt that just failed, from 1.

    Returns
    -------
    int
        The delay in milliseconds; the exponent stops at 10 (``base * 1024``).

    Examples
    --------
    >>> [backoff_delay_ms(100, a) for a in (1, 2, 3, 20)]
    [100, 200, 400, 102400]
    """
    return base_ms << min(attempt - 1, MAX_BACKOFF_EXPONENT)


def reason_codes_for(summary: CycleSummary, backlog: int) -> list[str]:
    """The cycle's reason codes in SPEC order; ``healthy_cycle`` alone when none holds.

    Parameters
    ----------
    summary : CycleSummary
        The cycle's counters.
    backlog : int
        Cases left queued after the cycle.

    Returns
    -------
    list of str
        Codes from :data:`tau_ops.models.REASON_CODES`, in that order.

    Examples
    --------
    >>> reason_codes_for(CycleSummary(failed_cases=1, retry_attempts=3), backlog=2)
    ['queue_backpressure_applied', 'retry_attempted', 'case_processing_failed']
    >>> reason_codes_for(CycleSummary(), backlog=0)
    ['healthy_cycle']
    """
    conditions = [
        ("queue_backpressure_applied", backlog > 0),
        ("duplicate_cases_skipped", summary.duplicate_skips > 0),
        ("malformed_inputs_observed", summary.malformed_cases > 0),
        ("retry_attempted", summary.retry_attempts > 0),
        ("retryable_failures_observed", summary.retryable_failures > 0),
        ("case_processing_failed", summary.failed_cases > 0),
        ("wasm_rollout_applied", summary.wasm_rollouts > 0),
        ("cloud_rollout_applied", summary.cloud_rollouts > 0),
    ]
    codes = [code for code, holds in conditions if holds]
    return codes or ["healthy_cycle"]


def queue_order(cases: list[FixtureCase]) -> list[FixtureCase]:
    """Cases sorted by (case_id, blueprint_id, deploy_target) as the queue takes them.

    Parameters
    ----------
    cases : list of FixtureCase
        A fixture's cases.

    Returns
    -------
    list of FixtureCase
        The queue order; a cycle takes the first ``queue_limit``.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import FakeClock, parse_fixture
    >>> fixture = parse_fixture('''{"schema_version": 1, "name": "one", "cases": [
    ...   {"case_id": "c-1", "deploy_target": "kubernetes", "runtime_profile": "native",
    ...    "blueprint_id": "api", "environment": "staging", "region": "iad",
    ...    "container_image": "api:1",
    ...    "expected": {"outcome": "success", "status_code": 202, "response_body": {
    ...      "status": "accepted", "blueprint_id": "api", "deploy_target": "kubernetes",
    ...      "runtime_profile": "native", "environment": "staging", "region": "iad",
    ...      "replicas": 1, "rollout_strategy": "rolling", "artifact": "api:1"}}}]}''')
    >>> [c.case_id for c in queue_order(fixture.cases)]
    ['c-1']
    """
    return sorted(cases, key=lambda c: (c.case_id, c.blueprint_id, c.deploy_target))


@dataclass
class _Handled:
    case: FixtureCase
    key: str
    result: CaseResult
    failed: bool


def _evaluate_with_retries(
    case: FixtureCase,
    config: RunnerConfig,
    counts: dict[str, int],
    sleeper: Sleeper,
    manifest_loader: ManifestLoader,
) -> tuple[CaseResult, bool]:
    attempt = 1
    while True:
        result = evaluate_case(case, manifest_loader=manifest_loader)
        check_expected(case, result)
        if result.outcome != "retryable_failure":
            return result, False
        counts["retryable_failures"] += 1
        if attempt >= config.retry_max_attempts:
            return result, True
        delay = backoff_delay_ms(config.retry_base_delay_ms, attempt)
        if delay > 0:
            sleeper(delay / 1000.0)
        counts["retry_attempts"] += 1
        attempt += 1


_ROLLOUTS = TypeAdapter(list[RolloutRecord])


def _rollout(handled: _Handled, now_ms: int) -> dict[str, object]:
    body = handled.result.response_body
    case = handled.case
    return dict(
        case_key=handled.key,
        case_id=case.case_id,
        deploy_target=norm(case.deploy_target),
        runtime_profile=norm(case.runtime_profile),
        blueprint_id=case.blueprint_id,
        environment=norm(case.environment),
        region=case.region,
        artifact=body.get("artifact", ""),
        artifact_sha256=body.get("artifact_sha256", ""),
        artifact_size_bytes=body.get("artifact_size_bytes", 0),
        artifact_manifest=body.get("artifact_manifest", ""),
        runtime_constraints=list(body.get("runtime_constraints", [])),
        replicas=case.replicas,
        rollout_strategy=body.get("rollout_strategy", ""),
        status_code=handled.result.status_code,
        outcome=handled.result.outcome,
        error_code=handled.result.error_code,
        updated_unix_ms=now_ms,
    )


def _payload(handled: _Handled) -> dict[str, object]:
    """The seed's log payload; tau-ops adds ``reason`` to a non-success."""
    case, result = handled.case, handled.result
    payload: dict[str, object] = {
        "outcome": result.outcome,
        "case_id": case.case_id,
        "deploy_target": norm(case.deploy_target),
        "runtime_profile": norm(case.runtime_profile),
        "blueprint_id": case.blueprint_id,
        "status_code": result.status_code,
    }
    if result.outcome == "success":
        body = result.response_body
        payload.update(
            artifact=body.get("artifact", ""),
            artifact_sha256=body.get("artifact_sha256", ""),
            artifact_size_bytes=body.get("artifact_size_bytes", 0),
            artifact_manifest=body.get("artifact_manifest", ""),
            runtime_constraints=list(body.get("runtime_constraints", [])),
            rollout_strategy=body.get("rollout_strategy", ""),
        )
    else:
        payload["error_code"] = result.error_code
        payload["reason"] = result.response_body.get("reason", "")
    return payload


def _context_text(handled: _Handled) -> str:
    """The seed's context line text."""
    case, result = handled.case, handled.result
    if result.outcome == "success":
        return (
            f"deployment case {case.case_id} applied target={case.deploy_target} "
            f"runtime={case.runtime_profile} status={result.status_code}"
        )
    return (
        f"deployment case {case.case_id} outcome={result.outcome} "
        f"error_code={result.error_code} status={result.status_code}"
    )


def processed_keys(keys: Iterable[str], cap: int) -> OrderedDict[str, None]:
    """Processed case keys as loaded: trimmed, blanks and repeats dropped, newest ``cap`` kept.

    Parameters
    ----------
    keys : iterable of str
        ``processed_case_keys`` of ``state.json``, oldest first.
    cap : int
        ``processed_case_cap``; 0 keeps none.

    Returns
    -------
    OrderedDict
        The keys in insertion order (values unused).

    Examples
    --------
    >>> list(processed_keys([" a ", "b", "a", "", "c"], 2))
    ['b', 'c']
    """
    kept: OrderedDict[str, None] = OrderedDict()
    for key in keys:
        trimmed = key.strip()
        if trimmed:
            kept[trimmed] = None
    while len(kept) > cap:
        kept.popitem(last=False)
    return kept


def _mark_processed(processed: OrderedDict[str, None], key: str, cap: int) -> None:
    """Add ``key`` and drop the oldest keys beyond ``cap`` at once, as the seed does."""
    if key in processed:
        return
    processed[key] = None
    while len(processed) > cap:
        processed.popitem(last=False)


def is_paused(state_dir: Path) -> bool:
    """True when an operator paused the runner for this state dir.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.

    Returns
    -------
    bool
        Whether ``runner-paused.json`` exists there (any content, even unreadable).

    Examples
    --------
    >>> import tempfile
    >>> is_paused(Path(tempfile.mkdtemp()))
    False
    """
    return os.path.lexists(StatePaths(state_dir).pause_marker)


def run_cycle(
    fixture: Fixture,
    config: RunnerConfig | None = None,
    *,
    clock: Clock = wall_clock_ms,
    sleeper: Sleeper = real_sleep,
    manifest_loader: ManifestLoader = default_manifest_loader,
) -> CycleReport:
    """Run one cycle of ``fixture`` against ``config.state_dir`` and persist its outcome.

    Holds the state-dir lock throughout: recovers an interrupted cycle,
    evaluates the queue (retrying retryable cases), then commits
    ``state.json``, one event line and the channel store together.

    Parameters
    ----------
    fixture : Fixture
        A validated fixture (:func:`tau_ops.load_fixture`).
    config : RunnerConfig, optional
        State dir, queue limit, cap and retry policy (default: the runbook's).
    clock : callable, optional
        ``() -> int``, Unix time in milliseconds (default: the wall clock).
    sleeper : callable, optional
        ``(seconds: float) -> None`` used for retry backoff (default: ``time.sleep``).
    manifest_loader : callable, optional
        ``Path -> ManifestInfo``, loads a case's WASM manifest (default: full verification).

    Returns
    -------
    CycleReport
        The cycle's counters, reason codes, health and timings.

    Raises
    ------
    ContractViolation
        An observed result differs from the case's ``expected`` (nothing persisted).
    RunnerPaused
        A pause marker exists in the state dir (nothing read or written).
    StateError
        The state dir cannot be locked or written, ``state.json`` is a link or
        special file, or an interrupted cycle cannot be recovered; a failed
        commit is rolled back.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import FakeClock, parse_fixture
    >>> fixture = parse_fixture('''{"schema_version": 1, "name": "one", "cases": [
    ...   {"case_id": "c-1", "deploy_target": "kubernetes", "runtime_profile": "native",
    ...    "blueprint_id": "api", "environment": "staging", "region": "iad",
    ...    "container_image": "api:1",
    ...    "expected": {"outcome": "success", "status_code": 202, "response_body": {
    ...      "status": "accepted", "blueprint_id": "api", "deploy_target": "kubernetes",
    ...      "runtime_profile": "native", "environment": "staging", "region": "iad",
    ...      "replicas": 1, "rollout_strategy": "rolling", "artifact": "api:1"}}}]}''')
    >>> config = RunnerConfig(state_dir=tempfile.mkdtemp())
    >>> run_cycle(fixture, config, clock=FakeClock()).upserted_rollouts
    1
    >>> run_cycle(fixture, config, clock=FakeClock()).duplicate_skips
    1
    """
    config = config or RunnerConfig()
    state_dir = Path(config.state_dir)
    paths = StatePaths(state_dir)
    with storage.state_lock(state_dir), paused_gc():
        if is_paused(state_dir):
            marker = paths.pause_marker
            raise RunnerPaused(
                f"runner is paused for {state_dir} ({marker} exists); "
                "run 'tau-ops runner resume' to re-enable it"
            )
        recover(state_dir)
        started = clock()
        state = load_state_for_update(state_dir, now_ms=started)
        ordered = queue_order(fixture.cases)
        queue, backlog = ordered[: config.queue_limit], max(0, len(ordered) - config.queue_limit)
        # Plain dict counters on the per-case path; the CycleSummary model is built once.
        counts = dict.fromkeys(CycleSummary.model_fields, 0)
        counts.update(discovered_cases=len(ordered), queued_cases=len(queue))
        cap = config.processed_case_cap
        processed = processed_keys(state.processed_case_keys, cap)
        handled: list[_Handled] = []
        for case in queue:
            key = case_key(case)
            if key in processed:
                counts["duplicate_skips"] += 1
                continue
            result, failed = _evaluate_with_retries(
                case, config, counts, sleeper, manifest_loader
            )
            handled.append(_Handled(case, key, result, failed))
            if not failed:
                _mark_processed(processed, key, cap)
        finished = clock()
        _apply(state, handled, counts, processed, finished)
        summary = CycleSummary(**counts)
        return _persist(state, handled, summary, backlog, paths, started, finished)


def _apply(
    state: DeploymentState,
    handled: list[_Handled],
    counts: dict[str, int],
    processed: OrderedDict[str, None],
    now_ms: int,
) -> None:
    rollouts = {r.case_key: r for r in state.rollouts}
    fresh: list[dict[str, object]] = []
    for item in handled:
        if item.failed:
            counts["failed_cases"] += 1
        elif item.result.outcome == "malformed_input":
            counts["malformed_cases"] += 1
        else:
            counts["applied_cases"] += 1
            counts["upserted_rollouts"] += 1
            if norm(item.case.deploy_target) == "wasm":
                counts["wasm_rollouts"] += 1
            else:
                counts["cloud_rollouts"] += 1
            fresh.append(_rollout(item, now_ms))
    # One batch validation in Rust instead of one Python constructor call per record.
    for record in _ROLLOUTS.validate_python(fresh):
        rollouts[record.case_key] = record
    state.processed_case_keys = list(processed)
    state.rollouts = [rollouts[k] for k in sorted(rollouts)]


def _persist(
    state: DeploymentState,
    handled: list[_Handled],
    summary: CycleSummary,
    backlog: int,
    paths: StatePaths,
    started: int,
    finished: int,
) -> CycleReport:
    previous = state.health.failure_streak if state.health else 0
    streak = previous + 1 if summary.failed_cases > 0 else 0
    duration = max(0, finished - started)
    state.health = HealthSnapshot(
        updated_unix_ms=finished,
        cycle_duration_ms=duration,
        queue_depth=backlog,
        active_runs=0,
        failure_streak=streak,
        last_cycle_discovered=summary.discovered_cases,
        last_cycle_processed=summary.applied_cases + summary.malformed_cases
        + summary.failed_cases + summary.duplicate_skips,
        last_cycle_completed=summary.applied_cases + summary.malformed_cases,
        last_cycle_failed=summary.failed_cases,
        last_cycle_duplicates=summary.duplicate_skips,
        last_cycle_malformed=summary.malformed_cases,
        last_cycle_retries=summary.retry_attempts,
    )
    verdict = health.classify(state.health)
    codes = reason_codes_for(summary, backlog)
    event = RuntimeEvent(
        timestamp_unix_ms=finished,
        health_state=verdict.state,
        health_reason=verdict.reason,
        reason_codes=codes,
        backlog_cases=backlog,
        failure_streak=streak,
        cycle_duration_ms=duration,
        **summary.model_dump(),
    )
    event_line = json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
    storage.rotate_if_needed(paths.events, len(event_line) + 1, root=paths.root)
    commit = Commit(state=dump_state(state))
    commit.appends[paths.events] = [event_line]
    lines: dict[str, tuple[list[str], list[str]]] = {}
    succeeded: set[str] = set()
    for item in handled:
        logs, contexts = lines.setdefault(item.case.blueprint_id, ([], []))
        logs.append(
            channel_store.log_line(timestamp_ms=finished, key=item.key, payload=_payload(item))
        )
        contexts.append(channel_store.context_line(timestamp_ms=finished, text=_context_text(item)))
        if item.result.outcome == "success":
            succeeded.add(item.case.blueprint_id)
    folders = {bp: channel_store.channel_dir(paths.channel_store, bp) for bp in lines}
    for blueprint_id, (logs, contexts) in lines.items():
        folder = folders[blueprint_id]
        commit.appends.setdefault(folder / channel_store.LOG_FILE, []).extend(logs)
        commit.appends.setdefault(folder / channel_store.CONTEXT_FILE, []).extend(contexts)
    # MEMORY.md is rewritten for a blueprint that had a success this cycle, as the seed does.
    by_blueprint: dict[str, list[RolloutRecord]] = {bp: [] for bp in succeeded}
    for record in state.rollouts:
        if record.blueprint_id in by_blueprint:
            by_blueprint[record.blueprint_id].append(record)
    for blueprint_id, records in by_blueprint.items():
        commit.rewrites[folders[blueprint_id] / channel_store.MEMORY_FILE] = (
            channel_store.render_memory(blueprint_id, records)
        )
    warnings = commit_cycle(paths.root, commit)
    return CycleReport(
        **summary.model_dump(),
        reason_codes=codes,
        health_state=verdict.state,
        health_reason=verdict.reason,
        recommendation=verdict.recommendation,
        failure_streak=streak,
        queue_depth=backlog,
        backlog_cases=backlog,
        cycle_duration_ms=duration,
        timestamp_unix_ms=finished,
        state_path=str(paths.state),
        events_path=str(paths.events),
        warnings=warnings,
    )
