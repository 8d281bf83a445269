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

from pydantic import BaseModel

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
from tau_ops.state import read_state
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
    """Re-verification of one packaged WASM deliverable."""

    blueprint_id: str
    runtime_profile: str
    manifest_path: str
    compliant: bool
    reason_codes: list[str]


class GateStep(BaseModel):
    """One step of the gate: a fixture (or the last cycle) and what it showed."""

    index: int
    fixture: str | None
    verdict: Literal["pass", "hold"]
    rollout_gate_reasons: list[str]
    reasons: list[str]
    recommendation: str
    monitored: dict[str, Any]
    health_state: str
    deliverables: list[DeliverableCheck]
    cycle: dict[str, Any] | None


class EvidenceFile(BaseModel):
    """One evidence file and its hash."""

    path: str
    sha256: str
    size_bytes: int


class GateVerdict(BaseModel):
    """``tau-ops gate``: the decision, why, the steps taken and where the evidence is."""

    verdict: Literal["pass", "hold"]
    rollout_gate_reasons: list[str]
    reasons: list[str]
    recommendation: str
    state_dir: str
    steps: list[GateStep]
    steps_planned: int
    evidence_dir: str
    summary_path: str


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
    """Re-inspect every deliverable ``state.json`` lists (hash, size, parse, compliance)."""
    from tau_ops.wasm.inspect import inspect_manifest

    state = read_state(state_dir)
    checks = []
    for entry in state.wasm_deliverables if state else []:
        manifest = str(entry.get("manifest_path", ""))
        try:
            report = inspect_manifest(Path(manifest))
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
    """Run the promotion gate; fixtures are all validated before anything runs."""
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
