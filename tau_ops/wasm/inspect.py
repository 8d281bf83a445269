"""Inspection: re-verify a packaged manifest against its artifact and its runtime profile.

Nothing in a manifest is trusted: the artifact is re-read (bounded, regular
files only), re-hashed and re-parsed by wasmtime, the constraints are compared
with the built-in profile, the blueprint id with the folder packaging put it
in, the file names with the hash, the source module (when it is still there)
with the artifact, and a manifest whose artifact lies outside its folder is
refused. Problems become reason codes in the report, so an operator sees every
one of them at once. Manifests are read as leniently as the seed reads them
(unknown fields ignored, defaultable fields defaulted, extra capability
constraints allowed: only the required feature gates are checked).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tau_ops import jsonio, storage
from tau_ops.errors import ManifestError, WasmModuleError
from tau_ops.wasm.manifest import WasmManifest, read_manifest_json, validate_manifest
from tau_ops.wasm.parse import parse_module
from tau_ops.wasm.profiles import (
    PROFILES,
    RUNTIME_PROFILE_MISMATCH,
    RuntimeConstraints,
    compliance_reason_codes,
    is_compliant,
)

# Integrity reason codes of inspection, reported after the compliance codes, in this order.
MANIFEST_SCHEMA_INVALID = "manifest_schema_invalid"
RUNTIME_PROFILE_UNKNOWN = "runtime_profile_unknown"
RUNTIME_CONSTRAINTS_MISMATCH = "runtime_constraints_mismatch"
BLUEPRINT_ID_MISMATCH = "blueprint_id_mismatch"
MANIFEST_NAME_MISMATCH = "manifest_name_mismatch"
ARTIFACT_OUTSIDE_MANIFEST_DIR = "artifact_outside_manifest_dir"
ARTIFACT_NAME_MISMATCH = "artifact_name_mismatch"
ARTIFACT_MISSING = "artifact_missing"
ARTIFACT_UNREADABLE = "artifact_unreadable"
ARTIFACT_SHA256_MISMATCH = "artifact_sha256_mismatch"
ARTIFACT_SIZE_MISMATCH = "artifact_size_mismatch"
ARTIFACT_INVALID_MODULE = "artifact_invalid_module"
OBSERVED_IMPORTS_MISMATCH = "observed_imports_mismatch"
SOURCE_MODULE_MISMATCH = "source_module_mismatch"
INTEGRITY_REASON_CODES: tuple[str, ...] = (
    MANIFEST_SCHEMA_INVALID,
    RUNTIME_PROFILE_UNKNOWN,
    RUNTIME_CONSTRAINTS_MISMATCH,
    BLUEPRINT_ID_MISMATCH,
    MANIFEST_NAME_MISMATCH,
    ARTIFACT_OUTSIDE_MANIFEST_DIR,
    ARTIFACT_NAME_MISMATCH,
    ARTIFACT_MISSING,
    ARTIFACT_UNREADABLE,
    ARTIFACT_SHA256_MISMATCH,
    ARTIFACT_SIZE_MISMATCH,
    ARTIFACT_INVALID_MODULE,
    OBSERVED_IMPORTS_MISMATCH,
    SOURCE_MODULE_MISMATCH,
)


class InspectReport(BaseModel):
    """SPEC section 6 inspect report, plus what was found on disk and why it failed.

    Returned by :func:`inspect_manifest`; printed by
    ``--deployment-wasm-inspect-json``. ``reason_codes`` holds the compliance
    codes first, then the integrity codes (:data:`INTEGRITY_REASON_CODES`).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm import package_module
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     packaged = package_module(module, state_dir=Path(tmp) / "state")
    ...     _ = Path(packaged.artifact_path).write_bytes(large_core_module(300))
    ...     report = inspect_manifest(packaged.manifest_path)
    >>> report.compliant, report.reason_codes
    (False, ['artifact_sha256_mismatch', 'artifact_size_mismatch'])
    """

    manifest_path: str = Field(description="the manifest inspected, as given")
    blueprint_id: str = Field(description="the manifest's blueprint id")
    runtime_profile: str = Field(description="the manifest's runtime profile")
    constraint_profile_id: str = Field(
        description="the built-in profile's constraint profile id (the manifest's when the "
        "profile is unknown, '' when the manifest breaks the schema)")
    constraint_target_role: str = Field(description="the constraint profile's target role")
    required_runtime_profile: str = Field(
        description="the runtime profile the constraints require")
    required_abi: str = Field(description="the required ABI pattern (wasi:*)")
    compliant: bool = Field(
        description="true when no code other than abi_assumed_no_imports was found")
    reason_codes: list[str] = Field(
        description="compliance codes (SPEC section 6 order), then integrity codes")
    observed_import_modules: list[str] = Field(
        description="import modules re-read from the artifact (the manifest's when unreadable)")
    required_feature_gates: list[str] = Field(description="the constraint profile's feature gates")
    max_artifact_size_bytes: int = Field(description="the profile's size limit, in bytes")
    capability_constraints: list[str] = Field(
        description="capability constraints the manifest declares")
    artifact_path: str = Field(description="the artifact file checked (beside the manifest)")
    artifact_sha256: str = Field(description="SHA-256 the manifest declares")
    artifact_size_bytes: int = Field(description="size the manifest declares, in bytes")
    module_kind: str = Field(
        description="core or component as parsed ('' when the artifact could not be parsed)")
    details: list[str] = Field(description="one line per integrity problem: `<code>: <detail>`")


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest that passed inspection; what a rollout needs from it.

    Attributes
    ----------
    manifest_path : Path
        The manifest file.
    blueprint_id : str
        The blueprint packaged.
    runtime_profile : str
        The runtime profile it complies with.
    constraint_profile_id : str
        The built-in profile's constraint profile id.
    artifact_path : str
        The artifact's file name, relative to the manifest (see
        :attr:`artifact_file`).
    artifact_sha256 : str
        SHA-256 of the artifact (64 lowercase hex digits), checked.
    artifact_size_bytes : int
        Size of the artifact in bytes, checked.
    capability_constraints : list of str
        What a rollout success body reports as ``runtime_constraints``.
    observed_import_modules : list of str
        Import modules the manifest lists.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm import package_module
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     packaged = package_module(module, state_dir=Path(tmp) / "state")
    ...     verified = load_verified_manifest(Path(packaged.manifest_path))
    ...     verified.artifact_file == Path(packaged.artifact_path)
    True
    """

    manifest_path: Path
    blueprint_id: str
    runtime_profile: str
    constraint_profile_id: str
    artifact_path: str
    artifact_sha256: str
    artifact_size_bytes: int
    capability_constraints: list[str]
    observed_import_modules: list[str]

    @property
    def artifact_file(self) -> Path:
        """The artifact on disk (beside the manifest)."""
        return self.manifest_path.parent / self.artifact_path


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name


class _Findings:
    def __init__(self) -> None:
        self.codes: list[str] = []
        self.details: list[str] = []

    def add(self, code: str, detail: str) -> None:
        if code not in self.codes:
            self.codes.append(code)
        self.details.append(f"{code}: {detail}")


def _schema_invalid_report(path: Path, raw: dict[str, Any], problem: str) -> InspectReport:
    profile = PROFILES.get(_str(raw, "runtime_profile"))
    c = profile.constraints if profile else None
    return InspectReport(
        manifest_path=str(path),
        blueprint_id=_str(raw, "blueprint_id"),
        runtime_profile=_str(raw, "runtime_profile"),
        constraint_profile_id=c.profile_id if c else "",
        constraint_target_role=c.target_role if c else "",
        required_runtime_profile=c.required_runtime_profile if c else "",
        required_abi=c.required_abi if c else "",
        compliant=False,
        reason_codes=[MANIFEST_SCHEMA_INVALID],
        observed_import_modules=[],
        required_feature_gates=list(c.required_feature_gates) if c else [],
        max_artifact_size_bytes=c.max_artifact_size_bytes if c else 0,
        capability_constraints=[],
        artifact_path="",
        artifact_sha256="",
        artifact_size_bytes=0,
        module_kind="",
        details=[f"{MANIFEST_SCHEMA_INVALID}: {problem}"],
    )


def inspect_manifest(manifest_path: Path | str) -> InspectReport:
    """Re-verify a manifest; problems are reported, never raised.

    Checks are SPEC section 6's (hash, size, parse, imports, profile) plus the
    file's name and folder as packaging gives them.

    Parameters
    ----------
    manifest_path : Path or str
        ``<sha256>.manifest.json`` as :func:`~tau_ops.wasm.package_module` writes it.

    Returns
    -------
    InspectReport
        ``compliant`` and the ``reason_codes`` found.

    Raises
    ------
    ManifestError
        Only when the file cannot be read as a JSON object at all (exit 2).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm import package_module
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     packaged = package_module(module, state_dir=Path(tmp) / "state")
    ...     report = inspect_manifest(packaged.manifest_path)
    >>> report.compliant, report.reason_codes
    (True, [])
    """
    return _inspect(Path(manifest_path))[0]


def _check_names(found: _Findings, path: Path, m: WasmManifest) -> None:
    """Blueprint id vs its folder, manifest name vs its hash (as packaging names them)."""
    folder = storage.safe_component(m.blueprint_id.strip())
    if path.parent.name != folder:
        found.add(BLUEPRINT_ID_MISMATCH,
                  f"blueprint_id {m.blueprint_id!r} belongs in folder {folder!r}, "
                  f"the manifest lies in {path.parent.name!r}")
    if path.name != f"{m.artifact_sha256}.manifest.json":
        found.add(MANIFEST_NAME_MISMATCH,
                  f"manifest file {path.name!r} is not <artifact_sha256>.manifest.json")


def _check_source(found: _Findings, path: Path, m: WasmManifest) -> None:
    """The source module, when it is still a readable file, must be the artifact's bytes.

    Only an absolute ``source_module_path`` is compared: a relative one was
    relative to wherever packaging ran, and reading it from here would judge
    whatever file the current directory happens to hold.
    """
    source = Path(m.source_module_path)
    if not source.is_absolute():
        return
    try:
        data = jsonio.read_bounded(source, max_bytes=jsonio.LIMITS["wasm_module"],
                                   what="source module")
    except OSError:
        return  # moved or removed since packaging (CI builds): nothing to compare
    sha = hashlib.sha256(data).hexdigest()
    if sha != m.artifact_sha256:
        found.add(SOURCE_MODULE_MISMATCH,
                  f"source_module_path {m.source_module_path!r} has sha256 {sha}, "
                  f"not the artifact's")


def _check_artifact(
    found: _Findings, artifact: Path, m: WasmManifest, *, imports_declared: bool
) -> tuple[int, list[str], str]:
    """Hash, size, parse and imports of the artifact; (size, imports, kind) as found.

    Imports are compared only when the manifest lists them (the seed defaults
    an omitted list); compliance always uses the imports re-derived here.
    """
    size, imports, kind = m.artifact_size_bytes, list(m.observed_import_modules), ""
    if m.artifact_path != f"{m.artifact_sha256}.wasm":
        found.add(ARTIFACT_NAME_MISMATCH,
                  f"artifact_path {m.artifact_path!r} is not <artifact_sha256>.wasm")
    try:
        data = jsonio.read_bounded(artifact, max_bytes=jsonio.LIMITS["wasm_module"],
                                   what="artifact")
    except FileNotFoundError as exc:
        found.add(ARTIFACT_MISSING, f"cannot read {artifact}: {exc.strerror}")
        return size, imports, kind
    except OSError as exc:
        found.add(ARTIFACT_UNREADABLE, exc.strerror or str(exc))
        return size, imports, kind
    size = len(data)
    sha = hashlib.sha256(data).hexdigest()
    if sha != m.artifact_sha256:
        found.add(ARTIFACT_SHA256_MISMATCH,
                  f"artifact sha256 is {sha}, manifest says {m.artifact_sha256}")
    if size != m.artifact_size_bytes:
        found.add(ARTIFACT_SIZE_MISMATCH,
                  f"artifact is {size} bytes, manifest says {m.artifact_size_bytes}")
    try:
        module = parse_module(data, source=str(artifact))
    except WasmModuleError as exc:
        found.add(ARTIFACT_INVALID_MODULE, exc.message)
        return size, imports, kind
    kind, imports = module.kind, list(module.import_modules)
    if imports_declared and imports != m.observed_import_modules:
        found.add(OBSERVED_IMPORTS_MISMATCH,
                  f"artifact imports {imports}, manifest says {m.observed_import_modules}")
    return size, imports, kind


def _inspect(path: Path) -> tuple[InspectReport, WasmManifest | None]:
    raw = read_manifest_json(path)
    parsed = validate_manifest(raw)
    if isinstance(parsed, str):
        return _schema_invalid_report(path, raw, parsed), None
    m: WasmManifest = parsed
    found = _Findings()
    profile = PROFILES.get(m.runtime_profile.strip())
    constraints: RuntimeConstraints = profile.constraints if profile else m.runtime_constraints
    if profile is None:
        found.add(RUNTIME_PROFILE_UNKNOWN, f"runtime profile {m.runtime_profile!r} is not known")
    elif m.runtime_constraints != constraints:
        found.add(RUNTIME_CONSTRAINTS_MISMATCH,
                  f"runtime_constraints differ from profile {constraints.profile_id}")
    _check_names(found, path, m)

    size, imports, kind = m.artifact_size_bytes, list(m.observed_import_modules), ""
    artifact = path.parent / m.artifact_path
    if not _plain_name(m.artifact_path) or Path(m.artifact_path).is_absolute():
        found.add(ARTIFACT_OUTSIDE_MANIFEST_DIR,
                  f"artifact_path {m.artifact_path!r} is not a file name beside the manifest")
    elif artifact.resolve().parent != path.parent.resolve():
        found.add(ARTIFACT_OUTSIDE_MANIFEST_DIR,
                  f"artifact {artifact} resolves outside {path.parent}")
    else:
        size, imports, kind = _check_artifact(
            found, artifact, m, imports_declared="observed_import_modules" in raw)
    _check_source(found, path, m)
    compliance = compliance_reason_codes(
        constraints,
        runtime_profile=m.runtime_profile,
        artifact_size_bytes=size,
        capability_constraints=m.capability_constraints,
        import_modules=imports,
    )
    if (m.runtime_constraints.required_runtime_profile.strip() != m.runtime_profile.strip()
            and RUNTIME_PROFILE_MISMATCH not in compliance):
        compliance.insert(0, RUNTIME_PROFILE_MISMATCH)
    codes = compliance + found.codes
    report = InspectReport(
        manifest_path=str(path),
        blueprint_id=m.blueprint_id,
        runtime_profile=m.runtime_profile,
        constraint_profile_id=constraints.profile_id,
        constraint_target_role=constraints.target_role,
        required_runtime_profile=constraints.required_runtime_profile,
        required_abi=constraints.required_abi,
        compliant=is_compliant(codes),
        reason_codes=codes,
        observed_import_modules=imports,
        required_feature_gates=list(constraints.required_feature_gates),
        max_artifact_size_bytes=constraints.max_artifact_size_bytes,
        capability_constraints=list(m.capability_constraints),
        artifact_path=str(artifact),
        artifact_sha256=m.artifact_sha256,
        artifact_size_bytes=m.artifact_size_bytes,
        module_kind=kind,
        details=found.details,
    )
    return report, m


def load_verified_manifest(path: Path) -> VerifiedManifest:
    """Load a manifest for a rollout; :class:`ManifestError` unless it fully verifies.

    Parameters
    ----------
    path : Path
        The manifest file.

    Returns
    -------
    VerifiedManifest
        What a rollout needs: blueprint, profile, artifact path, sha256 and
        size (bytes), constraints and observed imports.

    Raises
    ------
    ManifestError
        The manifest cannot be read or does not verify (its reason codes are
        in the message; exit 2).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm import package_module
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     packaged = package_module(module, state_dir=Path(tmp) / "state")
    ...     load_verified_manifest(Path(packaged.manifest_path)).runtime_profile
    'wasm_wasi'
    """
    path = Path(path)
    report, manifest = _inspect(path)
    if manifest is None or not report.compliant:
        raise ManifestError(
            f"manifest {path} does not verify: reason_codes={','.join(report.reason_codes)}",
            path=path,
        )
    return VerifiedManifest(
        manifest_path=path,
        blueprint_id=manifest.blueprint_id,
        runtime_profile=manifest.runtime_profile,
        constraint_profile_id=report.constraint_profile_id,
        artifact_path=manifest.artifact_path,
        artifact_sha256=manifest.artifact_sha256,
        artifact_size_bytes=manifest.artifact_size_bytes,
        capability_constraints=list(manifest.capability_constraints),
        observed_import_modules=list(manifest.observed_import_modules),
    )
