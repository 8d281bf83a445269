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
    """What a case must produce; compared field by field with the observed result.

    Examples
    --------
    >>> ExpectedResult.model_validate({"outcome": "success", "status_code": 202,
    ...                                "response_body": {}}).error_code
    ''
    """

    outcome: Outcome = Field(
        description="Expected outcome: ``success``, ``malformed_input`` or ``retryable_failure``."
    )
    status_code: StrictInt = Field(
        ge=100, le=599,
        description="Expected HTTP status code, 100..599 (2xx for success, >= 400 otherwise)."
    )
    error_code: str = Field(
        default="",
        description=("Expected error code; empty for success, else one of the four deployment "
                     "error codes.")
    )
    response_body: dict[str, Any] = Field(
        description="Expected response body, a JSON object compared exactly (by JSON type)."
    )


class FixtureCase(_Strict):
    """One deployment case of a fixture (SPEC section 2).

    Examples
    --------
    >>> case = FixtureCase.model_validate({
    ...     "case_id": " c-1 ", "deploy_target": "kubernetes", "runtime_profile": "native",
    ...     "blueprint_id": "api", "environment": "staging", "region": "iad",
    ...     "container_image": "api:1",
    ...     "expected": {"outcome": "success", "status_code": 202, "response_body": {}}})
    >>> case.case_id, case.replicas
    ('c-1', 1)
    """

    schema_version: SchemaOne = Field(
        default=1,
        description="Case schema version; must be the JSON integer 1."
    )
    case_id: NonBlank = Field(
        description="Case identifier, unique in the fixture; trimmed, at most 128 UTF-8 bytes."
    )
    deploy_target: NonBlank = Field(
        description=("Deploy target: ``container``, ``kubernetes`` or ``wasm`` (compared trimmed,"
                     " lower-cased).")
    )
    runtime_profile: NonBlank = Field(
        description="Runtime profile: ``native`` or ``wasm_wasi`` (compared trimmed, lower-cased)."
    )
    blueprint_id: NonBlank = Field(
        description="Blueprint the case deploys; names its channel folder; at most 128 UTF-8 bytes."
    )
    environment: NonBlank = Field(
        description="Environment: ``staging`` or ``production`` (compared trimmed, lower-cased)."
    )
    region: NonBlank = Field(description="Region label, kept as given (trimmed).")
    container_image: str = Field(
        default="",
        description="Container image a non-wasm target deploys; empty when none."
    )
    wasm_module: str = Field(
        default="",
        description="WASM module path a ``wasm`` target deploys; empty when none."
    )
    wasm_manifest: str = Field(
        default="",
        description=("Path of a packaged WASM manifest, verified before the case is accepted; "
                     "empty when none.")
    )
    replicas: StrictInt = Field(default=1, ge=1, le=65535, description="Replica count, 1..65535.")
    simulate_retryable_failure: bool = Field(
        default=False,
        description=("When true the case fails with 503 on every attempt; true exactly when "
                     "``expected.outcome`` is ``retryable_failure``.")
    )
    expected: ExpectedResult = Field(description="The result the case must produce.")


class Fixture(_Strict):
    """A deployment contract fixture: a named list of cases with expectations.

    Read files with :func:`tau_ops.load_fixture` (bounded, JSON policy, SPEC
    rules); ``model_validate`` alone checks only the shape.

    Examples
    --------
    >>> Fixture.model_validate({"schema_version": 1, "name": "empty", "cases": []})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Fixture
    cases
      List should have at least 1 item after validation, not 0 ...
    """

    schema_version: SchemaOne = Field(
        description="Fixture schema version; must be the JSON integer 1."
    )
    name: NonBlank = Field(description="Fixture name (non-blank).")
    description: str = Field(
        default="",
        description="Free text for people; not used by the runner."
    )
    cases: list[FixtureCase] = Field(
        min_length=1,
        description=("The cases, at least one; the runner queues them sorted by (case_id, "
                     "blueprint_id, deploy_target).")
    )


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The observed result of evaluating one case (compared with ``expected``).

    Parameters
    ----------
    outcome : str
        ``success``, ``malformed_input`` or ``retryable_failure``.
    status_code : int
        HTTP status code (201/202 success, 400/422 rejection, 503 retryable).
    error_code : str
        Empty for success, else one of the four deployment error codes.
    response_body : dict
        The JSON response body.

    Examples
    --------
    >>> CaseResult("retryable_failure", 503, "deployment_backend_unavailable",
    ...            {"status": "retryable"}).status_code
    503
    """

    outcome: Outcome
    status_code: int
    error_code: str
    response_body: dict[str, Any]


class RolloutRecord(BaseModel):
    """A successful rollout in ``state.json``, keyed and sorted by ``case_key``.

    Examples
    --------
    >>> record = RolloutRecord(
    ...     case_key="kubernetes:native:staging:api:c-1", case_id="c-1",
    ...     deploy_target="kubernetes", runtime_profile="native", blueprint_id="api",
    ...     environment="staging", region="iad", artifact="api:1", replicas=1,
    ...     rollout_strategy="rolling", status_code=202, outcome="success",
    ...     updated_unix_ms=1_700_000_000_000)
    >>> record.artifact_size_bytes, record.runtime_constraints
    (0, [])
    """

    model_config = ConfigDict(extra="allow")

    case_key: str = Field(
        description=("``target:runtime:environment:blueprint_id:case_id``; the record's key and "
                     "sort order.")
    )
    case_id: str = Field(description="Case identifier (trimmed).")
    deploy_target: str = Field(description="Deploy target, normalized (trimmed, lower-cased).")
    runtime_profile: str = Field(description="Runtime profile, normalized (trimmed, lower-cased).")
    blueprint_id: str = Field(description="Blueprint identifier (trimmed).")
    environment: str = Field(description="Environment, normalized (trimmed, lower-cased).")
    region: str = Field(description="Region (trimmed).")
    artifact: str = Field(
        description=("What was deployed: container image, WASM module path or the manifest's "
                     "``artifact_path``.")
    )
    artifact_sha256: str = Field(
        default="",
        description="SHA-256 of the WASM artifact (hex), when deployed from a manifest; else empty."
    )
    artifact_size_bytes: JsonInt = Field(
        default=0, ge=0,
        description="Size of the WASM artifact in bytes, when deployed from a manifest; else 0."
    )
    artifact_manifest: str = Field(
        default="",
        description="The manifest path as the case gave it; empty without a manifest."
    )
    runtime_constraints: list[str] = Field(
        default_factory=list,
        description="The manifest's ``capability_constraints``; empty without a manifest."
    )
    replicas: JsonInt = Field(ge=0, le=65535, description="Replica count, 1..65535.")
    rollout_strategy: str = Field(
        description="``rolling`` (kubernetes), ``recreate`` (container) or ``canary`` (wasm)."
    )
    status_code: JsonInt = Field(ge=0, le=65535,  # the seed's u16
                                 description="HTTP status of the accepted case: 201 (wasm) or 202.")
    outcome: str = Field(description="Always ``success`` for a record written by the runner.")
    error_code: str = Field(default="", description="Empty for a success.")
    updated_unix_ms: JsonInt = Field(
        ge=0, le=253_402_300_799_999,  # jsonio.MAX_UNIX_MS: 9999-12-31
        description="When the record was last written, Unix time in milliseconds (UTC)."
    )


class HealthSnapshot(BaseModel):
    """The health of the last cycle, as stored under ``state.json`` ``health``.

    The default (every field 0) is the seed's default snapshot: it is what a
    state with no cycle yet holds, recognised by ``updated_unix_ms == 0``.
    Values are read as they are; :func:`tau_ops.health.snapshot_problems`
    judges whether a runner could have written them.

    Examples
    --------
    >>> HealthSnapshot().updated_unix_ms
    0
    >>> HealthSnapshot(updated_unix_ms=1_700_000_000_000, failure_streak=2).failure_streak
    2
    """

    model_config = ConfigDict(extra="allow")

    updated_unix_ms: JsonInt = Field(
        default=0,
        description=("End of the last cycle, Unix time in milliseconds (UTC); 0 when no cycle ran"
                     " yet.")
    )
    cycle_duration_ms: JsonInt = Field(
        default=0,
        description="Duration of the last cycle in milliseconds."
    )
    queue_depth: JsonInt = Field(
        default=0,
        description="Cases left queued (backlog) after the last cycle."
    )
    active_runs: JsonInt = Field(
        default=0,
        description="Runs in progress; always 0 after a cycle (kept for the seed's format)."
    )
    failure_streak: JsonInt = Field(
        default=0,
        description=("Consecutive cycles with failed cases (previous + 1 when the cycle had "
                     "failed cases, else 0).")
    )
    last_cycle_discovered: JsonInt = Field(
        default=0,
        description="Cases in the fixture of the last cycle."
    )
    last_cycle_processed: JsonInt = Field(
        default=0,
        description="applied + malformed + failed + duplicate cases of the last cycle."
    )
    last_cycle_completed: JsonInt = Field(
        default=0,
        description="applied + malformed cases of the last cycle."
    )
    last_cycle_failed: JsonInt = Field(
        default=0,
        description="Cases of the last cycle that ran out of retry attempts."
    )
    last_cycle_duplicates: JsonInt = Field(
        default=0,
        description="Cases of the last cycle skipped as already processed."
    )
    last_cycle_malformed: JsonInt = Field(
        default=0,
        description="Cases of the last cycle rejected as malformed input."
    )
    last_cycle_retries: JsonInt = Field(
        default=0,
        description="Retry attempts made in the last cycle."
    )


class DeploymentState(BaseModel):
    """``state.json``: processed keys, rollouts, health and WASM deliverables.

    Read a state dir's file with :func:`tau_ops.read_state`; unknown fields are
    kept and written back.

    Examples
    --------
    >>> state = DeploymentState.model_validate({"health": None, "note": "kept"})
    >>> state.health.updated_unix_ms, state.model_dump()["note"]
    (0, 'kept')
    """

    model_config = ConfigDict(extra="allow")

    schema_version: JsonInt = Field(
        default=SCHEMA_VERSION,
        description="state.json schema version; 1."
    )
    processed_case_keys: list[str] = Field(
        default_factory=list,
        description="Case keys already processed, oldest first, at most ``processed_case_cap``."
    )
    rollouts: list[RolloutRecord] = Field(
        default_factory=list,
        description="Successful rollouts, one per case key, sorted by case key."
    )
    # The seed refuses ``null`` and writes its default snapshot (the runner every field 0,
    # the packager ``{}``); a state with no cycle yet gets that default, never null.
    health: HealthSnapshot = Field(
        default_factory=HealthSnapshot,
        description="Health of the last cycle (every field 0 before the first cycle)."
    )
    wasm_deliverables: list[dict[str, Any]] = Field(
        default_factory=list,
        description="WASM deliverables recorded by the packager, as written."
    )

    @field_validator("health", mode="before")
    @classmethod
    def _null_health_is_default(cls, value: Any) -> Any:
        """Read ``"health": null`` (written by older tau-ops) as the seed's default snapshot."""
        return {} if value is None else value


class CycleSummary(BaseModel):
    """Counters of one runner cycle (SPEC section 3); every field is a count of cases.

    Examples
    --------
    >>> CycleSummary(discovered_cases=3, applied_cases=3).failed_cases
    0
    """

    discovered_cases: int = Field(default=0, description="Cases in the fixture.")
    queued_cases: int = Field(
        default=0,
        description="Cases taken into this cycle's queue (at most ``queue_limit``)."
    )
    applied_cases: int = Field(default=0, description="Cases accepted (outcome ``success``).")
    duplicate_skips: int = Field(
        default=0,
        description="Queued cases skipped because their key was already processed."
    )
    malformed_cases: int = Field(default=0, description="Cases rejected as malformed input (4xx).")
    retryable_failures: int = Field(
        default=0,
        description="Failed attempts with a retryable outcome (each attempt counts)."
    )
    retry_attempts: int = Field(default=0, description="Attempts made after a first failed one.")
    failed_cases: int = Field(
        default=0,
        description="Cases that ran out of attempts; tried again next cycle."
    )
    upserted_rollouts: int = Field(
        default=0,
        description="Rollout records inserted or replaced in state.json."
    )
    wasm_rollouts: int = Field(default=0, description="Successes with the ``wasm`` target.")
    cloud_rollouts: int = Field(default=0, description="Successes with a non-wasm target.")


class RuntimeEvent(CycleSummary):
    """One line of ``runtime-events.jsonl``: a cycle's summary, health and reason codes.

    Examples
    --------
    >>> event = RuntimeEvent.model_validate_json(
    ...     '{"timestamp_unix_ms": 1700000000000, "health_state": "healthy",'
    ...     ' "health_reason": "no failures", "reason_codes": ["healthy_cycle"],'
    ...     ' "applied_cases": 2}')
    >>> event.health_state, event.applied_cases, event.backlog_cases
    ('healthy', 2, 0)
    """

    model_config = ConfigDict(extra="allow")

    timestamp_unix_ms: int = Field(description="End of the cycle, Unix time in milliseconds (UTC).")
    health_state: HealthState = Field(
        description="Health after the cycle: ``healthy``, ``degraded`` or ``failing``."
    )
    health_reason: str = Field(description="One line saying why the health is what it is.")
    reason_codes: list[str] = Field(
        description=("The cycle's reason codes, in the fixed order of reason codes "
                     "(``healthy_cycle`` alone when none holds).")
    )
    backlog_cases: int = Field(default=0, description="Cases left queued after the cycle.")
    failure_streak: int = Field(
        default=0,
        description="Consecutive cycles with failed cases, this one included."
    )
    cycle_duration_ms: int = Field(default=0, description="Duration of the cycle in milliseconds.")
