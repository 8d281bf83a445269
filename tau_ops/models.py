"""Pydantic models of the files and reports in SPEC sections 1-5.

These are the boundary types: what tau-ops reads from disk or hands to other
tools. ``state.json`` models allow unknown fields and keep them on rewrite, so
fields written by other tools survive a runner cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema, field_validator

Outcome = Literal["success", "malformed_input", "retryable_failure"]
HealthState = Literal["healthy", "degraded", "failing"]
RolloutGate = Literal["pass", "hold"]

SCHEMA_VERSION = 1
HEALTH_STATES: tuple[str, ...] = ("healthy", "degraded", "failing")
OUTCOMES: tuple[str, ...] = ("success", "malformed_input", "retryable_failure")
ERROR_CODES: tuple[str, ...] = (
    "deployment_invalid_blueprint",
    "deployment_unsupported_runtime",
    "deployment_missing_artifact",
    "deployment_backend_unavailable",
)
REASON_CODES: tuple[str, ...] = (
    "queue_backpressure_applied",
    "duplicate_cases_skipped",
    "malformed_inputs_observed",
    "retry_attempted",
    "retryable_failures_observed",
    "case_processing_failed",
    "wasm_rollout_applied",
    "cloud_rollout_applied",
    "healthy_cycle",
)


# Validated in Rust (no Python callback per field), which keeps 100k-case fixtures fast.
NonBlank = Annotated[str, Field(pattern=r"\S")]
# A JSON integer equal to 1: ``true`` and ``1.0`` are refused, as the seed's ``u32`` refuses them.
SchemaOne = Annotated[
    StrictInt, Field(ge=1, le=1), WithJsonSchema({"const": 1, "type": "integer"})
]
# Every integer read from state.json is a JSON integer (bool and float refused, as by serde).
JsonInt = StrictInt

MAX_PATH_FIELD_BYTES = 128
"""Longest ``blueprint_id`` / ``case_id`` accepted, in UTF-8 bytes after trimming.

Both name files and folders (channel folder, artifact folder) that get prefixes
and suffixes; NAME_MAX is 255 bytes on common filesystems, so 128 always fits.
"""


class _Strict(BaseModel):
    # Strings are trimmed before they are validated or used, as the seed trims them.
    model_config = ConfigDict(
        strict=True, extra="ignore", frozen=True, str_strip_whitespace=True
    )


class ExpectedResult(_Strict):
    """What a case must produce; compared field by field with the observed result."""

    outcome: Outcome
    status_code: StrictInt = Field(ge=100, le=599)
    error_code: str = ""
    response_body: dict[str, Any]


class FixtureCase(_Strict):
    """One deployment case of a fixture (SPEC section 2)."""

    schema_version: SchemaOne = 1
    case_id: NonBlank
    deploy_target: NonBlank
    runtime_profile: NonBlank
    blueprint_id: NonBlank
    environment: NonBlank
    region: NonBlank
    container_image: str = ""
    wasm_module: str = ""
    wasm_manifest: str = ""
    replicas: StrictInt = Field(default=1, ge=1, le=65535)
    simulate_retryable_failure: bool = False
    expected: ExpectedResult


class Fixture(_Strict):
    """A deployment contract fixture: a named list of cases with expectations."""

    schema_version: SchemaOne
    name: NonBlank
    description: str = ""
    cases: list[FixtureCase] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The observed result of evaluating one case (internal; compared with ``expected``)."""

    outcome: Outcome
    status_code: int
    error_code: str
    response_body: dict[str, Any]


class RolloutRecord(BaseModel):
    """A successful rollout in ``state.json``, keyed and sorted by ``case_key``."""

    model_config = ConfigDict(extra="allow")

    case_key: str
    case_id: str
    deploy_target: str
    runtime_profile: str
    blueprint_id: str
    environment: str
    region: str
    artifact: str
    artifact_sha256: str = ""
    artifact_size_bytes: JsonInt = 0
    artifact_manifest: str = ""
    runtime_constraints: list[str] = Field(default_factory=list)
    replicas: JsonInt
    rollout_strategy: str
    status_code: JsonInt
    outcome: str
    error_code: str = ""
    updated_unix_ms: JsonInt


class HealthSnapshot(BaseModel):
    """The health of the last cycle, as stored under ``state.json`` ``health``.

    The default (every field 0) is the seed's default snapshot: it is what a
    state with no cycle yet holds, recognised by ``updated_unix_ms == 0``.
    Values are read as they are; :func:`tau_ops.health.snapshot_problems`
    judges whether a runner could have written them.
    """

    model_config = ConfigDict(extra="allow")

    updated_unix_ms: JsonInt = 0
    cycle_duration_ms: JsonInt = 0
    queue_depth: JsonInt = 0
    active_runs: JsonInt = 0
    failure_streak: JsonInt = 0
    last_cycle_discovered: JsonInt = 0
    last_cycle_processed: JsonInt = 0
    last_cycle_completed: JsonInt = 0
    last_cycle_failed: JsonInt = 0
    last_cycle_duplicates: JsonInt = 0
    last_cycle_malformed: JsonInt = 0
    last_cycle_retries: JsonInt = 0


class DeploymentState(BaseModel):
    """``state.json``: processed keys, rollouts, health and WASM deliverables."""

    model_config = ConfigDict(extra="allow")

    schema_version: JsonInt = SCHEMA_VERSION
    processed_case_keys: list[str] = Field(default_factory=list)
    rollouts: list[RolloutRecord] = Field(default_factory=list)
    # The seed refuses ``null`` and writes its default snapshot (the runner every field 0,
    # the packager ``{}``); a state with no cycle yet gets that default, never null.
    health: HealthSnapshot = Field(default_factory=HealthSnapshot)
    wasm_deliverables: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("health", mode="before")
    @classmethod
    def _null_health_is_default(cls, value: Any) -> Any:
        """Read ``"health": null`` (written by older tau-ops) as the seed's default snapshot."""
        return {} if value is None else value


class CycleSummary(BaseModel):
    """Counters of one runner cycle (SPEC section 3)."""

    discovered_cases: int = 0
    queued_cases: int = 0
    applied_cases: int = 0
    duplicate_skips: int = 0
    malformed_cases: int = 0
    retryable_failures: int = 0
    retry_attempts: int = 0
    failed_cases: int = 0
    upserted_rollouts: int = 0
    wasm_rollouts: int = 0
    cloud_rollouts: int = 0


class RuntimeEvent(CycleSummary):
    """One line of ``runtime-events.jsonl``: a cycle's summary, health and reason codes."""

    model_config = ConfigDict(extra="allow")

    timestamp_unix_ms: int
    health_state: HealthState
    health_reason: str
    reason_codes: list[str]
    backlog_cases: int = 0
    failure_streak: int = 0
    cycle_duration_ms: int = 0
