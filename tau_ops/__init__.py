"""tau-ops: run and review deployment rollouts from a terminal, a script or a notebook.

Only the error classes are imported eagerly; every other public name loads
its module on first use, so ``import tau_ops`` stays cheap and each command of
the CLI imports only what it needs (``tau-ops fleet gate`` never builds the
runner's or the status reports' models, nor loads wasmtime or cryptography).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tau_ops.errors import (
    ContractViolation,
    FixtureError,
    IdentifierError,
    InputError,
    ManifestError,
    NonCompliantModule,
    OperationFailed,
    RunnerPaused,
    StateError,
    TauOpsError,
    UsageError,
    WasmModuleError,
)

if TYPE_CHECKING:
    __version__: str  # the installed distribution's version, from its metadata
    from tau_ops.analysis import (
        EventLog,
        EventsSummary,
        backlog_trend,
        health_timeline,
        incidents,
        load_events,
        read_events,
        reason_code_trends,
        scan_events,
        write_report,
    )
    from tau_ops.analysis.export import export_events
    from tau_ops.channel_store import ChannelInspectReport, inspect_channel
    from tau_ops.clock import FakeClock
    from tau_ops.contract import case_key, evaluate_case, load_fixture, parse_fixture
    from tau_ops.fleet import FleetPolicy, FleetReport, fleet_status
    from tau_ops.health import GateDecision, HealthVerdict, PauseMarker, classify, gate_decision
    from tau_ops.identity import (
        BrowserIdentity,
        DidPayload,
        DidReport,
        bootstrap_did,
        derive_identity,
        did_document,
        resolve_did_key,
        sign_challenge,
        verify_signature,
    )
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
    from tau_ops.ops import (
        create_snapshot,
        diagnose,
        pause_runner,
        promotion_gate,
        resume_runner,
        run_demo,
        verify_snapshot,
    )
    from tau_ops.runner import CycleReport, RunnerConfig, run_cycle
    from tau_ops.state import read_state
    from tau_ops.status import (
        DeploymentStatusReport,
        TransportHealthReport,
        deployment_status,
        transport_health,
    )
    from tau_ops.wasm import (
        ComplianceCheck,
        InspectReport,
        NonCompliantPackage,
        PackageReport,
        SandboxPolicy,
        SmokeReport,
        check_module,
        inspect_manifest,
        load_verified_manifest,
        package_module,
        smoke_run,
    )
    from tau_ops.widgets import IncidentReview, RolloutConsole
    from tau_ops.widgets.fleet import FleetView

_LAZY = {
    "ChannelInspectReport": "tau_ops.channel_store",
    "inspect_channel": "tau_ops.channel_store",
    "FakeClock": "tau_ops.clock",
    "case_key": "tau_ops.contract",
    "evaluate_case": "tau_ops.contract",
    "load_fixture": "tau_ops.contract",
    "parse_fixture": "tau_ops.contract",
    "GateDecision": "tau_ops.health",
    "HealthVerdict": "tau_ops.health",
    "PauseMarker": "tau_ops.health",
    "classify": "tau_ops.health",
    "gate_decision": "tau_ops.health",
    "CaseResult": "tau_ops.models",
    "CycleSummary": "tau_ops.models",
    "DeploymentState": "tau_ops.models",
    "Fixture": "tau_ops.models",
    "FixtureCase": "tau_ops.models",
    "HealthSnapshot": "tau_ops.models",
    "RolloutRecord": "tau_ops.models",
    "RuntimeEvent": "tau_ops.models",
    "CycleReport": "tau_ops.runner",
    "RunnerConfig": "tau_ops.runner",
    "run_cycle": "tau_ops.runner",
    "read_state": "tau_ops.state",
    "DeploymentStatusReport": "tau_ops.status",
    "TransportHealthReport": "tau_ops.status",
    "deployment_status": "tau_ops.status",
    "transport_health": "tau_ops.status",
    "BrowserIdentity": "tau_ops.identity",
    "DidReport": "tau_ops.identity",
    "bootstrap_did": "tau_ops.identity",
    "derive_identity": "tau_ops.identity",
    "did_document": "tau_ops.identity",
    "resolve_did_key": "tau_ops.identity",
    "sign_challenge": "tau_ops.identity",
    "verify_signature": "tau_ops.identity",
    "create_snapshot": "tau_ops.ops",
    "diagnose": "tau_ops.ops",
    "pause_runner": "tau_ops.ops",
    "promotion_gate": "tau_ops.ops",
    "resume_runner": "tau_ops.ops",
    "run_demo": "tau_ops.ops",
    "verify_snapshot": "tau_ops.ops",
    "inspect_manifest": "tau_ops.wasm",
    "package_module": "tau_ops.wasm",
    "smoke_run": "tau_ops.wasm",
    "FleetPolicy": "tau_ops.fleet",
    "FleetReport": "tau_ops.fleet",
    "FleetView": "tau_ops.widgets",
    "fleet_status": "tau_ops.fleet",
    "export_events": "tau_ops.analysis.export",
    "IncidentReview": "tau_ops.widgets",
    "RolloutConsole": "tau_ops.widgets",
    "EventLog": "tau_ops.analysis",
    "EventsSummary": "tau_ops.analysis",
    "backlog_trend": "tau_ops.analysis",
    "health_timeline": "tau_ops.analysis",
    "incidents": "tau_ops.analysis",
    "load_events": "tau_ops.analysis",
    "read_events": "tau_ops.analysis",
    "reason_code_trends": "tau_ops.analysis",
    "scan_events": "tau_ops.analysis",
    "write_report": "tau_ops.analysis",
    "ComplianceCheck": "tau_ops.wasm",
    "InspectReport": "tau_ops.wasm",
    "NonCompliantPackage": "tau_ops.wasm",
    "PackageReport": "tau_ops.wasm",
    "SandboxPolicy": "tau_ops.wasm",
    "SmokeReport": "tau_ops.wasm",
    "check_module": "tau_ops.wasm",
    "load_verified_manifest": "tau_ops.wasm",
    "DidPayload": "tau_ops.identity",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata loads on first use: fast CLI start-up
        globals()[name] = version = _installed_version()
        return version
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tau_ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _installed_version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tau-ops")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


__all__ = [
    "BrowserIdentity",
    "CaseResult",
    "ChannelInspectReport",
    "ComplianceCheck",
    "ContractViolation",
    "CycleReport",
    "CycleSummary",
    "DeploymentState",
    "DeploymentStatusReport",
    "DidPayload",
    "DidReport",
    "EventLog",
    "EventsSummary",
    "FakeClock",
    "Fixture",
    "FixtureCase",
    "FixtureError",
    "FleetPolicy",
    "FleetReport",
    "FleetView",
    "GateDecision",
    "HealthSnapshot",
    "HealthVerdict",
    "IdentifierError",
    "IncidentReview",
    "InputError",
    "InspectReport",
    "ManifestError",
    "NonCompliantModule",
    "NonCompliantPackage",
    "OperationFailed",
    "PackageReport",
    "PauseMarker",
    "RolloutConsole",
    "RolloutRecord",
    "RunnerConfig",
    "RunnerPaused",
    "RuntimeEvent",
    "SandboxPolicy",
    "SmokeReport",
    "StateError",
    "TauOpsError",
    "TransportHealthReport",
    "UsageError",
    "WasmModuleError",
    "backlog_trend",
    "bootstrap_did",
    "case_key",
    "check_module",
    "classify",
    "create_snapshot",
    "deployment_status",
    "derive_identity",
    "diagnose",
    "did_document",
    "evaluate_case",
    "export_events",
    "fleet_status",
    "gate_decision",
    "health_timeline",
    "incidents",
    "inspect_channel",
    "inspect_manifest",
    "load_events",
    "load_fixture",
    "load_verified_manifest",
    "package_module",
    "parse_fixture",
    "pause_runner",
    "promotion_gate",
    "read_events",
    "read_state",
    "reason_code_trends",
    "resolve_did_key",
    "resume_runner",
    "run_cycle",
    "run_demo",
    "scan_events",
    "sign_challenge",
    "smoke_run",
    "transport_health",
    "verify_signature",
    "verify_snapshot",
    "write_report",
]
