"""The promotion gate: the runbook's 'rollout plan with guardrails' as one verdict.

For each fixture in order (or, with none, the last recorded cycle): validate
the contract, run a cycle, re-verify every packaged WASM deliverable, read
transport health and deployment status, and decide ``pass`` or ``hold``.
Stops at the first step that holds. Everything read or produced is written as
evidence with a SHA-256 summary, so a promotion decision can be audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tau_ops import storage
from tau_ops.clock import Clock, Sleeper, real_sleep, wall_clock_ms
from tau_ops.contract import load_fixture
from tau_ops.errors import ContractViolation, ManifestError, RunnerPaused, StateError
from tau_ops.health import (
    DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
    DEFAULT_STALE_AFTER_MS,
    GateDecision,
    gate_decision,
)
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.state import deliverable_path, read_state
from tau_ops.status import (
    decide,
    deployment_status_at,
    read_pause,
    read_status_inputs,
    transport_health_at,
)

DEFAULT_EVIDENCE_ROOT = Path(".tau/reports/operator-readiness")
MONITORED = ("failure_streak", "last_cycle_failed", "queue_depth", "rollout_gate",
             "wasm_rollout_count", "cloud_rollout_count")


class DeliverableCheck(BaseModel):
    """Re-verification of one packaged WASM deliverable (part of :class:`GateStep`).

    Examples
    --------
    >>> DeliverableCheck(blueprint_id="edge", runtime_profile="wasm_wasi",
    ...                  manifest_path="m.json", compliant=True, reason_codes=[]).compliant
    True
    """

    blueprint_id: str = Field(
        description="Blueprint of the deliverable, as ``state.json`` lists it."
    )
    runtime_profile: str = Field(description="Runtime profile of the deliverable.")
    manifest_path: str = Field(description="Path of the deliverable's manifest.")
    compliant: bool = Field(
        description="Whether the artifact still matches its manifest (hash, size) and is compliant."
    )
    reason_codes: list[str] = Field(
        description=("Why it is not compliant (``manifest_unreadable: ...`` when unreadable); "
                     "empty when it is.")
    )


class GateStep(BaseModel):
    """One step of the gate: a fixture (or the last cycle) and what it showed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tau_ops import FakeClock
    >>> from tau_ops._data import data_path
    >>> work = Path(tempfile.mkdtemp())
    >>> verdict = promotion_gate(state_dir=work / "state",
    ...                          fixtures=[data_path("rollout-pass.json")],
    ...                          evidence_root=work / "evidence", clock=FakeClock())
    >>> step = verdict.steps[0]
    >>> step.index, step.verdict, step.cycle["applied_cases"]
    (1, 'pass', 3)
    """

    index: int = Field(description="Step number, from 1.")
    fixture: str | None = Field(
        description="Fixture run by this step; null when the step judged the last recorded cycle."
    )
    verdict: Literal["pass", "hold"] = Field(description="``pass`` or ``hold`` for this step.")
    rollout_gate_reasons: list[str] = Field(
        description="The rollout gate's reason codes after this step (empty on pass)."
    )
    reasons: list[str] = Field(
        description="Lines for people: contract violations, gate reason, failed deliverables."
    )
    recommendation: str = Field(description="The runbook's next action.")
    monitored: dict[str, Any] = Field(
        description=("The monitored fields of the deployment status after this step "
                     "(failure_streak, queue_depth, ...; null when the state is unreadable).")
    )
    health_state: str = Field(
        description="``healthy``, ``degraded`` or ``failing`` after this step."
    )
    deliverables: list[DeliverableCheck] = Field(
        description="Every WASM deliverable re-verified at this step."
    )
    cycle: dict[str, Any] | None = Field(
        description="The cycle report of this step's fixture; null when none ran."
    )


class EvidenceFile(BaseModel):
    """One evidence file and its hash (an entry of the evidence ``summary.json``).

    Examples
    --------
    >>> EvidenceFile(path="verdict.json", sha256="0" * 64, size_bytes=512).size_bytes
    512
    """

    path: str = Field(description="File name inside the evidence dir.")
    sha256: str = Field(description="SHA-256 of the file (hex).")
    size_bytes: int = Field(description="Size of the file in bytes.")


class GateVerdict(BaseModel):
    """``tau-ops gate``: the decision, why, the steps taken and where the evidence is.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tau_ops import FakeClock
    >>> from tau_ops._data import data_path
    >>> work = Path(tempfile.mkdtemp())
    >>> verdict = promotion_gate(state_dir=work / "state",
    ...                          fixtures=[data_path("rollout-pass.json")],
    ...                          evidence_root=work / "evidence", clock=FakeClock())
    >>> verdict.verdict, verdict.rollout_gate_reasons, verdict.steps_planned
    ('pass', [], 1)
    """

    verdict: Literal["pass", "hold"] = Field(
        description="``pass`` when every step passed, else ``hold`` (exit 1)."
    )
    rollout_gate_reasons: list[str] = Field(
        description="The rollout gate's reason codes at the last step."
    )
    reasons: list[str] = Field(
        description="Why the last step holds, lines for people; empty on pass."
    )
    recommendation: str = Field(description="The runbook's next action.")
    state_dir: str = Field(description="The state dir gated.")
    steps: list[GateStep] = Field(
        description="The steps taken; the gate stops at the first that holds."
    )
    steps_planned: int = Field(
        description="Steps planned (one per fixture, or 1 without fixtures)."
    )
    evidence_dir: str = Field(description="Folder holding this run's evidence files.")
    summary_path: str = Field(
        description="Path of ``summary.json`` (every evidence file with its SHA-256)."
    )


class _Evidence:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []

    def add_json(self, name: str, value: Any) -> None:
        path = self.folder / name
        storage.atomic_write_json(path, value)
        self.files.append(path)

    def add_copy(self, name: str, source: Path) -> None:
        path = self.folder / name
        storage.atomic_write_bytes(path, source.read_bytes())
        self.files.append(path)

    def summary(self) -> list[EvidenceFile]:
        return [EvidenceFile(path=p.name, sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                             size_bytes=p.stat().st_size) for p in self.files]


def _evidence_dir(root: Path, now_ms: int) -> Path:
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).strftime("%Y%m%dT%H%M%S")
    base = root / f"{stamp}.{now_ms % 1000:03d}Z"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    return folder


def verify_deliverables(state_dir: Path) -> list[DeliverableCheck]:
    """Re-inspect every deliverable ``state.json`` lists (hash, size, parse, compliance).

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.

    Returns
    -------
    list of DeliverableCheck
        One check per ``wasm_deliverables`` entry; an unreadable manifest is a
        non-compliant check, not an error.

    Raises
    ------
    StateError
        ``state.json`` is corrupt.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> verify_deliverables(Path(tempfile.mkdtemp()))
    []
    """
    from tau_ops.wasm.inspect import inspect_manifest

    state = read_state(state_dir)
    checks = []
    for entry in state.wasm_deliverables if state else []:
        manifest = str(entry.get("manifest_path", ""))
        try:
            report = inspect_manifest(deliverable_path(state_dir, manifest))
            compliant, codes = report.compliant, list(report.reason_codes)
        except ManifestError as exc:
            compliant, codes = False, [f"manifest_unreadable: {exc}"]
        checks.append(DeliverableCheck(
            blueprint_id=str(entry.get("blueprint_id", "")),
            runtime_profile=str(entry.get("runtime_profile", "")),
            manifest_path=manifest, compliant=compliant, reason_codes=codes))
    return checks


def _judge(state_dir: Path, evidence: _Evidence, tag: str, *, now_ms: int, stale_after_ms: int,
           skew_tolerance_ms: int) -> tuple[GateDecision, dict[str, Any]]:
    """Read the state dir once, record both reports as evidence, and decide the gate.

    A state that cannot be read (corrupt, or impossible health values) is
    judged by the same :func:`tau_ops.health.gate_decision`, as ``invalid_state``.
    """
    try:
        inputs = read_status_inputs(state_dir)  # one read of state and events for both reports
    except StateError as exc:
        decision = gate_decision(None, now_ms=now_ms, stale_after_ms=stale_after_ms,
                                 skew_tolerance_ms=skew_tolerance_ms,
                                 pause=read_pause(state_dir), invalid=str(exc))
        evidence.add_json(f"{tag}-state-error.json", {
            "error": str(exc), "rollout_gate": decision.rollout_gate,
            "rollout_gate_reasons": decision.rollout_gate_reasons})
        return decision, {name: None for name in MONITORED}
    options: dict[str, int] = {"now_ms": now_ms, "stale_after_ms": stale_after_ms,
                               "skew_tolerance_ms": skew_tolerance_ms}
    health = transport_health_at(inputs, **options)
    status = deployment_status_at(inputs, **options)
    evidence.add_json(f"{tag}-transport-health.json", health.model_dump(mode="json"))
    evidence.add_json(f"{tag}-deployment-status.json", status.model_dump(mode="json"))
    return decide(inputs, **options), {name: getattr(status, name) for name in MONITORED}


def promotion_gate(
    *,
    state_dir: Path | str,
    fixtures: list[Path] | None = None,
    queue_limit: int = 64,
    processed_case_cap: int = 10_000,
    retry_max_attempts: int = 4,
    retry_base_delay_ms: int = 0,
    stale_after_ms: int = DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
    evidence_root: Path | str = DEFAULT_EVIDENCE_ROOT,
    clock: Clock = wall_clock_ms,
    sleeper: Sleeper = real_sleep,
) -> GateVerdict:
    """Run the promotion gate; fixtures are all validated before anything runs.

    Each fixture is one step: run a cycle, re-verify the WASM deliverables,
    judge the rollout gate; the gate stops at the first step that holds.
    Without fixtures the last recorded cycle is judged. Every step's reports
    are written as evidence with a ``summary.json`` of SHA-256 hashes.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.
    fixtures : list of Path, optional
        Fixture files, one step each (default: none, judge the last cycle).
    queue_limit, processed_case_cap, retry_max_attempts : int
        Runner options (counts), as for :class:`~tau_ops.runner.RunnerConfig`.
    retry_base_delay_ms : int
        Retry backoff base, milliseconds.
    stale_after_ms, skew_tolerance_ms : int
        Freshness limit and clock-skew tolerance, milliseconds.
    evidence_root : Path or str
        Folder under which this run's evidence dir is created.
    clock : callable, optional
        ``() -> int``, Unix time in milliseconds (default: the wall clock).
    sleeper : callable, optional
        ``(seconds) -> None`` for retry backoff.

    Returns
    -------
    GateVerdict
        ``pass`` or ``hold``, the reasons, every step and the evidence paths.
        A contract violation or a paused runner is a ``hold``, not an error.

    Raises
    ------
    FixtureError
        A fixture is unreadable or invalid (nothing ran).
    UsageError
        A runner option is out of range.
    StateError
        The state dir cannot be locked or written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tau_ops import FakeClock
    >>> from tau_ops._data import data_path
    >>> work = Path(tempfile.mkdtemp())
    >>> verdict = promotion_gate(state_dir=work / "state",
    ...                          fixtures=[data_path("rollout-pass.json")],
    ...                          evidence_root=work / "evidence", clock=FakeClock())
    >>> verdict.verdict, Path(verdict.summary_path).name
    ('pass', 'summary.json')
    """
    state_dir = Path(state_dir)
    fixture_paths = list(fixtures or [])
    loaded = [load_fixture(path) for path in fixture_paths]  # FixtureError -> exit 2
    config = RunnerConfig(state_dir=state_dir, queue_limit=queue_limit,
                          processed_case_cap=processed_case_cap,
                          retry_max_attempts=retry_max_attempts,
                          retry_base_delay_ms=retry_base_delay_ms)
    evidence = _Evidence(_evidence_dir(Path(evidence_root), clock()))
    plan: list[tuple[Path | None, Any]] = list(zip(fixture_paths, loaded, strict=True)) or [
        (None, None)]
    steps: list[GateStep] = []
    for index, (path, fixture) in enumerate(plan, start=1):
        tag = f"step-{index:02d}"
        reasons: list[str] = []
        cycle: dict[str, Any] | None = None
        if path is not None:
            evidence.add_copy(f"{tag}-fixture.json", path)
            try:
                report = run_cycle(fixture, config, clock=clock, sleeper=sleeper)
                cycle = report.model_dump(mode="json")
                evidence.add_json(f"{tag}-cycle.json", cycle)
            except (ContractViolation, RunnerPaused) as exc:
                reasons.append(str(exc))
        try:
            deliverables = verify_deliverables(state_dir)
        except StateError:
            deliverables = []  # an unreadable state is judged (invalid_state) just below
        evidence.add_json(f"{tag}-wasm-deliverables.json",
                          [d.model_dump(mode="json") for d in deliverables])
        decision, monitored = _judge(state_dir, evidence, tag, now_ms=clock(),
                                     stale_after_ms=stale_after_ms,
                                     skew_tolerance_ms=skew_tolerance_ms)
        if decision.rollout_gate == "hold":
            reasons.append(decision.reason)
        for check in deliverables:
            if not check.compliant:
                reasons.append(f"wasm deliverable {check.blueprint_id}/{check.runtime_profile} "
                               f"failed verification: {', '.join(check.reason_codes)}")
        verdict: Literal["pass", "hold"] = "pass" if not reasons else "hold"
        steps.append(GateStep(
            index=index, fixture=str(path) if path else None, verdict=verdict,
            rollout_gate_reasons=decision.rollout_gate_reasons, reasons=reasons,
            recommendation=decision.recommendation, monitored=monitored,
            health_state=decision.health_state, deliverables=deliverables, cycle=cycle))
        if verdict == "hold":
            break
    if (state_dir / "state.json").is_file():
        evidence.add_copy("state.json", state_dir / "state.json")
    final = steps[-1]
    result = GateVerdict(
        verdict=final.verdict, rollout_gate_reasons=final.rollout_gate_reasons,
        reasons=final.reasons, recommendation=final.recommendation, state_dir=str(state_dir),
        steps=steps,
        steps_planned=len(plan), evidence_dir=str(evidence.folder),
        summary_path=str(evidence.folder / "summary.json"),
    )
    evidence.add_json("verdict.json", result.model_dump(mode="json"))
    storage.atomic_write_json(evidence.folder / "summary.json", {
        "verdict": result.verdict, "reasons": result.reasons, "created_unix_ms": clock(),
        "files": [f.model_dump() for f in evidence.summary()],
    })
    return result


def read_summary(evidence_dir: Path) -> dict[str, Any]:
    """Load an evidence summary (for audits and tests)."""
    data: dict[str, Any] = json.loads((evidence_dir / "summary.json").read_text())
    return data
