"""The status documents' models: the seed's shapes plus tau-ops's gate fields (SPEC section 4).

:mod:`tau_ops.status` fills them; readers (CLI, gateway, widgets, metrics)
render them. The seed's health counters live in ``health{}``; read-only
properties reach them from Python (``report.failure_streak``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from tau_ops.models import HealthSnapshot


class PauseInfo(BaseModel):
    """The pause marker as shown in reports: who paused the runner, when and why."""

    paused_unix_ms: int | None
    paused_utc: str | None
    paused_by: str | None
    reason: str | None


class _Verdict(BaseModel):
    """tau-ops's fields added to the seed's documents: the gate decision and freshness.

    The seed's health counters live in ``health{}``; the read-only properties
    (``failure_streak``, ``queue_depth``, ...) reach them from Python.
    """

    health_state: str
    health_reason: str
    rollout_gate: str
    rollout_gate_reasons: list[str]
    rollout_gate_reason: str
    recommendation: str
    state_dir: str
    state_exists: bool
    judged_unix_ms: int
    updated_utc: str | None
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    clock_skew_ms: int
    clock_skew_tolerance_ms: int
    runner_paused: bool
    pause: PauseInfo | None

    if TYPE_CHECKING:
        health: HealthSnapshot

    @property
    def updated_unix_ms(self) -> int:
        """``health.updated_unix_ms``."""
        return self.health.updated_unix_ms

    @property
    def cycle_duration_ms(self) -> int:
        """``health.cycle_duration_ms``."""
        return self.health.cycle_duration_ms

    @property
    def queue_depth(self) -> int:
        """``health.queue_depth``."""
        return self.health.queue_depth

    @property
    def active_runs(self) -> int:
        """``health.active_runs``."""
        return self.health.active_runs

    @property
    def failure_streak(self) -> int:
        """``health.failure_streak``."""
        return self.health.failure_streak

    @property
    def last_cycle_discovered(self) -> int:
        """``health.last_cycle_discovered``."""
        return self.health.last_cycle_discovered

    @property
    def last_cycle_processed(self) -> int:
        """``health.last_cycle_processed``."""
        return self.health.last_cycle_processed

    @property
    def last_cycle_completed(self) -> int:
        """``health.last_cycle_completed``."""
        return self.health.last_cycle_completed

    @property
    def last_cycle_failed(self) -> int:
        """``health.last_cycle_failed``."""
        return self.health.last_cycle_failed

    @property
    def last_cycle_duplicates(self) -> int:
        """``health.last_cycle_duplicates``."""
        return self.health.last_cycle_duplicates

    @property
    def last_cycle_malformed(self) -> int:
        """``health.last_cycle_malformed``."""
        return self.health.last_cycle_malformed

    @property
    def last_cycle_retries(self) -> int:
        """``health.last_cycle_retries``."""
        return self.health.last_cycle_retries


class _SeedTransportRow(BaseModel):
    """The seed's transport health row."""

    transport: str
    target: str
    state_path: str
    health: HealthSnapshot


class TransportHealthReport(_Verdict, _SeedTransportRow):
    """One row of ``--transport-health-inspect deployment`` (the seed prints a list of rows).

    Seed fields first: ``transport``, ``target``, ``state_path``, ``health{}``;
    then tau-ops's additions (gate, reasons, freshness, pause, recommendation).
    """


class _SeedDeploymentStatus(BaseModel):
    """The seed's deployment status document, field for field."""

    state_path: str
    events_log_path: str
    events_log_present: bool
    health_state: str
    health_reason: str
    rollout_gate: str
    processed_case_count: int
    rollout_count: int
    target_counts: dict[str, int]
    runtime_profile_counts: dict[str, int]
    environment_counts: dict[str, int]
    outcome_counts: dict[str, int]
    status_code_counts: dict[str, int]
    error_code_counts: dict[str, int]
    total_replicas: int
    wasm_rollout_count: int
    cloud_rollout_count: int
    cycle_reports: int
    invalid_cycle_reports: int
    last_reason_codes: list[str]
    reason_code_counts: dict[str, int]
    health: HealthSnapshot


class DeploymentStatusReport(_Verdict, _SeedDeploymentStatus):
    """``--deployment-status-inspect``: the seed's status document plus tau-ops's additions."""

    wasm_deliverable_count: int
    event_files: int

    @property
    def deploy_target_counts(self) -> dict[str, int]:
        """``target_counts`` (the name tau-ops used before it adopted the seed's)."""
        return self.target_counts
