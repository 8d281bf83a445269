"""The deliverable manifest and the ``state.json`` ``wasm_deliverables`` entry (SPEC section 6).

Manifests are read as the seed reads them: unknown fields are ignored and the
fields the seed defaults (``schema_version``, ``manifest_kind``,
``capability_constraints``, ``runtime_constraints`` and its import/gate lists,
``observed_import_modules``) may be omitted. Every read goes through
:mod:`tau_ops.jsonio` (bounded, regular files only, one JSON policy).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tau_ops import jsonio
from tau_ops.errors import ManifestError
from tau_ops.wasm.profiles import (
    BASE_FEATURE_GATES,
    PROFILES,
    RuntimeConstraints,
)

MANIFEST_KIND = "tau_wasm_deliverable"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _default_constraints() -> RuntimeConstraints:
    return PROFILES["wasm_wasi"].constraints


class WasmManifest(BaseModel):
    """``<sha>.manifest.json``: what was packaged, under which constraints, and its hash.

    The fields are SPEC section 6's manifest, in the seed's order (also the
    order written to disk). Written by :func:`~tau_ops.wasm.package_module`;
    re-verified against its artifact by :func:`~tau_ops.wasm.inspect_manifest`.

    Examples
    --------
    >>> m = WasmManifest.model_validate({
    ...     "blueprint_id": "edge-wasm", "deploy_target": "wasm", "runtime_profile": "wasm_wasi",
    ...     "source_module_path": "edge.wasm", "artifact_path": "ab" * 32 + ".wasm",
    ...     "artifact_sha256": "ab" * 32, "artifact_size_bytes": 8,
    ...     "generated_unix_ms": 1_700_000_000_000})
    >>> m.manifest_kind, m.runtime_constraints.profile_id, m.observed_import_modules
    ('tau_wasm_deliverable', 'control_plane_gateway_v1', [])
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    schema_version: Literal[1] = Field(default=1, description="manifest schema version (1)")
    manifest_kind: str = Field(default=MANIFEST_KIND, description="always tau_wasm_deliverable")
    blueprint_id: str = Field(
        description="the blueprint the artifact is for; also the name of its folder")
    deploy_target: str = Field(description="always wasm")
    runtime_profile: str = Field(
        description="runtime profile it was checked against: wasm_wasi or "
        "channel_automation_wasi")
    source_module_path: str = Field(description="the module file as packaging was given it")
    artifact_path: str = Field(
        description="the artifact's file name, relative to the manifest (`<sha256>.wasm`)")
    artifact_sha256: str = Field(description="SHA-256 of the artifact, 64 lowercase hex digits")
    artifact_size_bytes: int = Field(gt=0, description="size of the artifact, in bytes")
    generated_unix_ms: int = Field(gt=0, le=jsonio.MAX_UNIX_MS,
                                   description="when it was packaged, Unix epoch ms")
    capability_constraints: list[str] = Field(
        default_factory=lambda: list(BASE_FEATURE_GATES), min_length=1,
        description="capabilities the module may rely on: the profile's feature gates")
    runtime_constraints: RuntimeConstraints = Field(
        default_factory=_default_constraints,
        description="the constraint profile the module was checked against")
    observed_import_modules: list[str] = Field(
        default_factory=list,
        description="sorted, distinct import module names read from the artifact by wasmtime")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        if not jsonio.is_json_int(value):  # true == 1 in Python, never in JSON (serde's u32)
            raise ValueError("must be the JSON integer 1")
        return value

    @field_validator("manifest_kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value.strip() != MANIFEST_KIND:
            raise ValueError(f"must be {MANIFEST_KIND!r}")
        return value

    @field_validator("deploy_target")
    @classmethod
    def _target(cls, value: str) -> str:
        if value.strip() != "wasm":
            raise ValueError("must be 'wasm'")
        return value

    @field_validator("blueprint_id", "runtime_profile", "source_module_path", "artifact_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("capability_constraints")
    @classmethod
    def _no_blank_items(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("must not contain empty values")
        return value

    @field_validator("artifact_sha256")
    @classmethod
    def _hex64(cls, value: str) -> str:
        if not _SHA256.fullmatch(value.strip()):
            raise ValueError("must be 64 lowercase hex digits")
        return value.strip()

    def same_content(self, other: WasmManifest) -> bool:
        """Equal apart from when it was generated (packaging twice is idempotent)."""
        mine = self.model_dump(exclude={"generated_unix_ms"})
        return mine == other.model_dump(exclude={"generated_unix_ms"})


class WasmDeliverable(BaseModel):
    """One ``state.json`` ``wasm_deliverables`` entry: the seed's fields, in the seed's order.

    Keyed by (``blueprint_id``, ``runtime_profile``); ``artifact_path`` and
    ``manifest_path`` are the paths as packaging wrote them. Unknown fields
    are kept, so a state written by a newer tool loses nothing.

    Examples
    --------
    >>> entry = WasmDeliverable(
    ...     blueprint_id="edge-wasm", runtime_profile="wasm_wasi",
    ...     constraint_profile_id="control_plane_gateway_v1", required_abi="wasi:*",
    ...     required_feature_gates=["no_native_process_exec"],
    ...     artifact_path="out/edge-wasm/ab.wasm", artifact_sha256="ab" * 32,
    ...     artifact_size_bytes=8, manifest_path="out/edge-wasm/ab.manifest.json",
    ...     generated_unix_ms=1_700_000_000_000)
    >>> entry.key, entry.deploy_target
    (('edge-wasm', 'wasm_wasi'), 'wasm')
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = Field(default=1, description="entry schema version (1)")
    blueprint_id: str = Field(description="the blueprint packaged (first half of the key)")
    deploy_target: str = Field(default="wasm", description="always wasm")
    runtime_profile: str = Field(description="the runtime profile (second half of the key)")
    constraint_profile_id: str = Field(description="the profile's constraint profile id")
    required_abi: str = Field(description="the profile's required ABI pattern (wasi:*)")
    required_feature_gates: list[str] = Field(description="the profile's feature gates")
    artifact_path: str = Field(description="the artifact file as packaging wrote it")
    artifact_sha256: str = Field(description="SHA-256 of the artifact, 64 lowercase hex digits")
    artifact_size_bytes: int = Field(description="size of the artifact, in bytes")
    manifest_path: str = Field(description="the manifest file as packaging wrote it")
    generated_unix_ms: int = Field(description="the manifest's generated_unix_ms (Unix epoch ms)")

    @property
    def key(self) -> tuple[str, str]:
        """(blueprint_id, runtime_profile): the upsert key."""
        return (self.blueprint_id, self.runtime_profile)


def read_manifest_json(path: Path) -> dict[str, Any]:
    """Read a manifest file as a JSON object.

    Parameters
    ----------
    path : Path
        A regular file of at most ``jsonio.LIMITS['manifest']`` bytes.

    Returns
    -------
    dict
        The JSON object.

    Raises
    ------
    ManifestError
        Missing, not a regular file (``/dev/zero``, a FIFO), too large, not
        JSON under the :mod:`tau_ops.jsonio` policy (nesting deeper than 64
        included), or not an object.
    """
    try:
        data = jsonio.read_bounded(path, max_bytes=jsonio.LIMITS["manifest"], what="manifest")
    except OSError as exc:
        reason = exc.strerror if exc.strerror else str(exc)
        raise ManifestError(f"cannot read manifest {path}: {reason}", path=path) from exc
    try:
        raw = jsonio.parse_json(data)
    except jsonio.JSONPolicyError as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc}", path=path) from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {path} must be a JSON object", path=path)
    return raw


def validate_manifest(raw: dict[str, Any]) -> WasmManifest | str:
    """The manifest model, or a one-line description of the first schema problem."""
    try:
        return WasmManifest.model_validate(raw)
    except ValidationError as exc:
        where, message = jsonio.describe_schema_error(exc.errors())
        return f"field '{where or '(manifest)'}': {message}"
