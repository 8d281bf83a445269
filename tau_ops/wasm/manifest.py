"""The deliverable manifest and the ``state.json`` ``wasm_deliverables`` entry (SPEC section 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tau_ops.errors import ManifestError
from tau_ops.wasm.profiles import RuntimeConstraints

MANIFEST_KIND = "tau_wasm_deliverable"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class WasmManifest(BaseModel):
    """``<sha>.manifest.json``: what was packaged, under which constraints, and its hash."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1]
    manifest_kind: Literal["tau_wasm_deliverable"]
    blueprint_id: str = Field(min_length=1)
    deploy_target: Literal["wasm"]
    runtime_profile: str = Field(min_length=1)
    source_module_path: str
    artifact_path: str = Field(min_length=1)
    artifact_sha256: str
    artifact_size_bytes: int = Field(ge=0)
    generated_unix_ms: int = Field(ge=0)
    capability_constraints: list[str]
    runtime_constraints: RuntimeConstraints
    observed_import_modules: list[str]

    @field_validator("artifact_sha256")
    @classmethod
    def _hex64(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError("must be 64 lowercase hex digits")
        return value

    def same_content(self, other: WasmManifest) -> bool:
        """Equal apart from when it was generated (packaging twice is idempotent)."""
        mine = self.model_dump(exclude={"generated_unix_ms"})
        return mine == other.model_dump(exclude={"generated_unix_ms"})


class WasmDeliverable(BaseModel):
    """One ``state.json`` ``wasm_deliverables`` entry, keyed by (blueprint_id, runtime_profile)."""

    model_config = ConfigDict(extra="allow")

    blueprint_id: str
    runtime_profile: str
    deploy_target: str = "wasm"
    constraint_profile_id: str
    manifest_path: str
    artifact_path: str
    artifact_sha256: str
    artifact_size_bytes: int
    source_module_path: str
    capability_constraints: list[str]
    observed_import_modules: list[str]
    updated_unix_ms: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.blueprint_id, self.runtime_profile)


def read_manifest_json(path: Path) -> dict[str, Any]:
    """Read a manifest file as a JSON object; :class:`ManifestError` when that is impossible."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise ManifestError(f"cannot read manifest {path}: is a directory", path=path) from exc
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}", path=path) from exc
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc}", path=path) from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {path} must be a JSON object", path=path)
    return raw


def validate_manifest(raw: dict[str, Any]) -> WasmManifest | str:
    """The manifest model, or a one-line description of the first schema problem."""
    try:
        return WasmManifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "(manifest)"
        return f"field '{where}': {err['msg']}"
