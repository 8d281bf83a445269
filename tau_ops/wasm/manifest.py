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

    Field order is the seed's (it is also the order written to disk).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    schema_version: Literal[1] = 1
    manifest_kind: str = MANIFEST_KIND
    blueprint_id: str
    deploy_target: str
    runtime_profile: str
    source_module_path: str
    artifact_path: str
    artifact_sha256: str
    artifact_size_bytes: int = Field(gt=0)
    generated_unix_ms: int = Field(gt=0, le=jsonio.MAX_UNIX_MS)
    capability_constraints: list[str] = Field(
        default_factory=lambda: list(BASE_FEATURE_GATES), min_length=1)
    runtime_constraints: RuntimeConstraints = Field(default_factory=_default_constraints)
    observed_import_modules: list[str] = Field(default_factory=list)

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
    ``manifest_path`` are the paths as packaging wrote them.
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = 1
    blueprint_id: str
    deploy_target: str = "wasm"
    runtime_profile: str
    constraint_profile_id: str
    required_abi: str
    required_feature_gates: list[str]
    artifact_path: str
    artifact_sha256: str
    artifact_size_bytes: int
    manifest_path: str
    generated_unix_ms: int

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
