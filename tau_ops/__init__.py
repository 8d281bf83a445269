"""tau-ops: run and review deployment rollouts from a terminal, a script or a notebook."""

from __future__ import annotations

from tau_ops.channel_store import ChannelInspectReport, inspect_channel
from tau_ops.clock import FakeClock
from tau_ops.contract import case_key, evaluate_case, load_fixture, parse_fixture
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
from tau_ops.health import HealthVerdict, classify
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
from tau_ops.runner import CycleReport, RunnerConfig, run_cycle
from tau_ops.state import read_state
from tau_ops.status import (
    DeploymentStatusReport,
    TransportHealthReport,
    deployment_status,
    transport_health,
)

__version__ = "0.1.0"

__all__ = [
    "CaseResult",
    "ChannelInspectReport",
    "ContractViolation",
    "CycleReport",
    "CycleSummary",
    "DeploymentState",
    "DeploymentStatusReport",
    "FakeClock",
    "Fixture",
    "FixtureCase",
    "FixtureError",
    "HealthSnapshot",
    "HealthVerdict",
    "IdentifierError",
    "InputError",
    "ManifestError",
    "NonCompliantModule",
    "OperationFailed",
    "RolloutRecord",
    "RunnerConfig",
    "RunnerPaused",
    "RuntimeEvent",
    "StateError",
    "TauOpsError",
    "TransportHealthReport",
    "UsageError",
    "WasmModuleError",
    "case_key",
    "classify",
    "deployment_status",
    "evaluate_case",
    "inspect_channel",
    "load_fixture",
    "parse_fixture",
    "read_state",
    "run_cycle",
    "transport_health",
]
