"""Operator workflows: the demo, the promotion gate, snapshots, the pause switch, diagnosis."""

from __future__ import annotations

from tau_ops.ops.demo import DemoStep, run_demo
from tau_ops.ops.diagnosis import Diagnosis, Finding, diagnose
from tau_ops.ops.gate import GateStep, GateVerdict, promotion_gate, verify_deliverables
from tau_ops.ops.pause import PauseStatus, pause_runner, pause_status, resume_runner
from tau_ops.ops.snapshot import SnapshotReport, VerifyReport, create_snapshot, verify_snapshot

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
