"""The status documents' models: the seed's shapes plus tau-ops's gate fields (SPEC section 4).

:mod:`tau_ops.status` fills them; readers (CLI, gateway, widgets, metrics)
render them. The seed's health counters live in ``health{}``; read-only
properties reach them from Python (``report.failure_streak``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from tau_ops.models import HealthSnapshot


class PauseInfo(BaseModel):
    """The pause marker as shown in reports: who paused the runner, when and why.

    Examples
    --------
    >>> PauseInfo(paused_unix_ms=None, paused_utc=None, paused_by="ops", reason=None).paused_by
    'ops'
    """

    paused_unix_ms: int | None = Field(
        description=("When the runner was paused, Unix time in milliseconds (UTC); null when the "
                     "marker does not say.")
    )
    paused_utc: str | None = Field(
        description="``paused_unix_ms`` as ISO 8601 UTC; null when unknown."
    )
    paused_by: str | None = Field(
        description="Who paused the runner (user or tool); null when the marker does not say."
    )
    reason: str | None = Field(
        description="Why the runner was paused; null when the marker does not say."
    )


class _Verdict(BaseModel):
    """tau-ops's fields added to the seed's documents: the gate decision and freshness.

    The seed's health counters live in ``health{}``; the read-only properties
    (``failure_streak``, ``queue_depth``, ...) reach them from Python.
    """

    health_state: str = Field(
        description=("``healthy``, ``degraded`` or ``failing`` (of the last cycle; ``healthy`` "
                     "before any).")
    )
    health_reason: str = Field(description="One line saying why the health is what it is.")
    rollout_gate: str = Field(
        description="``pass`` only when ``rollout_gate_reasons`` is empty, else ``hold``."
    )
    rollout_gate_reasons: list[str] = Field(
        description=("Why the gate holds, in order: invalid_state, no_cycle, runner_paused, "
                     "clock_skew, stale_state, health_failing, health_degraded; empty on pass.")
    )
    rollout_gate_reason: str = Field(description="One line for people explaining the gate.")
    recommendation: str = Field(description="The runbook's next action for this verdict.")
    state_dir: str = Field(description="The state dir judged.")
    state_exists: bool = Field(description="Whether ``state.json`` exists.")
    judged_unix_ms: int = Field(
        description="The time the verdict was judged at, Unix time in milliseconds (UTC)."
    )
    updated_utc: str | None = Field(
        description="End of the last cycle as ISO 8601 UTC; null before the first cycle."
    )
    state_age_ms: int = Field(
        description=("Age of the last cycle at ``judged_unix_ms``, milliseconds (0 when none or "
                     "in the future).")
    )
    stale_after_ms: int = Field(
        description="Age limit of the last cycle, milliseconds; older holds with ``stale_state``."
    )
    stale: bool = Field(description="Whether the last cycle is older than ``stale_after_ms``.")
    clock_skew_ms: int = Field(
        description=("How far the last cycle lies ahead of ``judged_unix_ms``, milliseconds (0 "
                     "when not ahead).")
    )
    clock_skew_tolerance_ms: int = Field(
        description=("Largest skew accepted, milliseconds; beyond it the gate holds with "
                     "``clock_skew``.")
    )
    runner_paused: bool = Field(
        description="Whether a pause marker exists (the gate then holds with ``runner_paused``)."
    )
    pause: PauseInfo | None = Field(
        description="The pause marker's details; null when the runner is not paused."
    )

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

    transport: str = Field(description="Always ``deployment``.")
    target: str = Field(description="Always ``cloud-and-wasm-runtime``.")
    state_path: str = Field(description="Path of ``state.json``.")
    health: HealthSnapshot = Field(
        description="The health snapshot of ``state.json`` (all 0 before the first cycle)."
    )


class TransportHealthReport(_Verdict, _SeedTransportRow):
    """One row of ``--transport-health-inspect deployment`` (the seed prints a list of rows).

    Seed fields first: ``transport``, ``target``, ``state_path``, ``health{}``;
    then tau-ops's additions (gate, reasons, freshness, pause, recommendation).
    Built by :func:`tau_ops.transport_health`.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import transport_health
    >>> row = transport_health(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> row.transport, row.rollout_gate, row.failure_streak
    ('deployment', 'hold', 0)
    """


class _SeedDeploymentStatus(BaseModel):
    """The seed's deployment status document, field for field."""

    state_path: str = Field(description="Path of ``state.json``.")
    events_log_path: str = Field(description="Path of ``runtime-events.jsonl``.")
    events_log_present: bool = Field(description="Whether ``runtime-events.jsonl`` exists.")
    health_state: str = Field(
        description=("``healthy``, ``degraded`` or ``failing`` (of the last cycle; ``healthy`` "
                     "before any).")
    )
    health_reason: str = Field(description="One line saying why the health is what it is.")
    rollout_gate: str = Field(
        description="``pass`` only when ``rollout_gate_reasons`` is empty, else ``hold``."
    )
    processed_case_count: int = Field(description="Case keys in ``processed_case_keys``.")
    rollout_count: int = Field(description="Rollout records in ``state.json``.")
    target_counts: dict[str, int] = Field(
        description="Rollouts per deploy target (trimmed, lower-cased)."
    )
    runtime_profile_counts: dict[str, int] = Field(
        description="Rollouts per runtime profile (trimmed, lower-cased)."
    )
    environment_counts: dict[str, int] = Field(
        description="Rollouts per environment (trimmed, lower-cased)."
    )
    outcome_counts: dict[str, int] = Field(description="Rollouts per outcome.")
    status_code_counts: dict[str, int] = Field(
        description="Rollouts per HTTP status code (the code as a string key)."
    )
    error_code_counts: dict[str, int] = Field(description="Rollouts per non-empty error code.")
    total_replicas: int = Field(description="Sum of ``replicas`` over the rollouts.")
    wasm_rollout_count: int = Field(description="Rollouts with the ``wasm`` target.")
    cloud_rollout_count: int = Field(description="Rollouts with a non-wasm target.")
    cycle_reports: int = Field(
        description="Committed cycle lines in the event files (current and rotated)."
    )
    invalid_cycle_reports: int = Field(description="Event lines that are not valid cycle reports.")
    last_reason_codes: list[str] = Field(
        description="Reason codes of the latest cycle line; empty when none."
    )
    reason_code_counts: dict[str, int] = Field(
        description="Times each reason code was listed over all event files, as the seed "
        "counts them (a code listed twice in one cycle counts twice; the analysis questions "
        "count cycles)."
    )
    health: HealthSnapshot = Field(
        description="The health snapshot of ``state.json`` (all 0 before the first cycle)."
    )


class DeploymentStatusReport(_Verdict, _SeedDeploymentStatus):
    """``--deployment-status-inspect``: the seed's status document plus tau-ops's additions.

    Built by :func:`tau_ops.deployment_status`. The seed's health counters are
    in ``health``; read-only properties reach them (``report.queue_depth``).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import deployment_status
    >>> report = deployment_status(tempfile.mkdtemp(), now_ms=1_700_000_000_000)
    >>> report.rollout_gate_reasons, report.rollout_count, report.cycle_reports
    (['no_cycle'], 0, 0)
    """

    wasm_deliverable_count: int = Field(
        description="Entries in ``state.json`` ``wasm_deliverables``."
    )
    event_files: int = Field(
        description="Event files read: ``runtime-events.jsonl`` and its rotated files."
    )

    @property
    def deploy_target_counts(self) -> dict[str, int]:
        """``target_counts`` (the name tau-ops used before it adopted the seed's)."""
        return self.target_counts
