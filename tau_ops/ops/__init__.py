"""Operator workflows: the demo, the promotion gate, snapshots, the pause switch, diagnosis.

Each name loads its module on first use, so importing one workflow (the
report reads snapshot archives through :mod:`tau_ops.ops.snapshot`) does not
import the others (the demo imports the runner and the status reports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tau_ops.ops.demo import DemoStep, run_demo
    from tau_ops.ops.diagnosis import Diagnosis, Finding, diagnose
    from tau_ops.ops.gate import GateStep, GateVerdict, promotion_gate, verify_deliverables
    from tau_ops.ops.pause import PauseStatus, pause_runner, pause_status, resume_runner
    from tau_ops.ops.snapshot import SnapshotReport, VerifyReport, create_snapshot, verify_snapshot

_MODULES = {
    "tau_ops.ops.demo": ("DemoStep", "run_demo"),
    "tau_ops.ops.diagnosis": ("Diagnosis", "Finding", "diagnose"),
    "tau_ops.ops.gate": ("GateStep", "GateVerdict", "promotion_gate", "verify_deliverables"),
    "tau_ops.ops.pause": ("PauseStatus", "pause_runner", "pause_status", "resume_runner"),
    "tau_ops.ops.snapshot": ("SnapshotReport", "VerifyReport", "create_snapshot",
                             "verify_snapshot"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "DemoStep",
    "Diagnosis",
    "Finding",
    "GateStep",
    "GateVerdict",
    "PauseStatus",
    "SnapshotReport",
    "VerifyReport",
    "create_snapshot",
    "diagnose",
    "pause_runner",
    "pause_status",
    "promotion_gate",
    "resume_runner",
    "run_demo",
    "verify_deliverables",
    "verify_snapshot",
]
assert sorted(__all__) == sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tau_ops.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
