"""Packaging: check a module against its runtime profile, write artifact + manifest, record it.

Order matters for "a refused module writes nothing": the module is read,
validated and checked for compliance before any file or state is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tau_ops import jsonio, storage
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import (
    ManifestError,
    NonCompliantModule,
    UsageError,
    WasmModuleError,
)
from tau_ops.models import DeploymentState
from tau_ops.state import StatePaths, update_state
from tau_ops.wasm.manifest import (
    WasmDeliverable,
    WasmManifest,
    read_manifest_json,
)
from tau_ops.wasm.parse import (
    ModuleKind,
    ParsedModule,
    parse_module,
    read_module_bytes,
    validate_module,
)
from tau_ops.wasm.profiles import compliance_reason_codes, get_profile, is_compliant

DEFAULT_BLUEPRINT_ID = "edge-wasm"
DEFAULT_RUNTIME_PROFILE = "wasm_wasi"


class ComplianceCheck(BaseModel):
    """The verdict on one module under one runtime profile, before anything is written.

    Returned by :func:`check_module`; carried by :class:`NonCompliantPackage`
    when packaging refuses a module. The rules are SPEC section 6's.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(
    ...         400, import_modules=["wasi_snapshot_preview1"]))
    ...     check = check_module(module)
    >>> check.compliant, check.observed_import_modules
    (False, ['wasi_snapshot_preview1'])
    >>> check.compliance_reason_codes
    ['required_abi_missing', 'import_module_not_allowlisted', 'import_module_forbidden']
    """

    blueprint_id: str = Field(description="the blueprint the module is for (trimmed)")
    runtime_profile: str = Field(description="the runtime profile checked against (normalized)")
    source_module_path: str = Field(description="the module file as given")
    module_kind: ModuleKind = Field(description="core (a core module) or component")
    artifact_sha256: str = Field(description="SHA-256 of the module, 64 lowercase hex digits")
    artifact_size_bytes: int = Field(description="size of the module, in bytes")
    constraint_profile_id: str = Field(description="the profile's constraint profile id")
    max_artifact_size_bytes: int = Field(description="the profile's size limit, in bytes")
    observed_import_modules: list[str] = Field(
        description="sorted, distinct import module names, as wasmtime reads them")
    capability_constraints: list[str] = Field(
        description="the profile's capability constraints (its feature gates)")
    compliance_reason_codes: list[str] = Field(
        description="compliance reason codes, in SPEC section 6 order (empty: none)")
    compliant: bool = Field(
        description="true when no code other than abi_assumed_no_imports was found")


class PackageReport(BaseModel):
    """What packaging wrote (SPEC section 6 package report, plus the module kind and imports).

    Returned by :func:`package_module`; printed by
    ``--deployment-wasm-package-json``.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     report = package_module(module, state_dir=Path(tmp) / "state",
    ...                             clock=lambda: 1_700_000_000_000)
    >>> report.constraint_profile_id, report.state_updated, report.observed_import_modules
    ('control_plane_gateway_v1', True, ['wasi:cli/environment@0.2.0'])
    """

    blueprint_id: str = Field(description="the blueprint packaged (trimmed)")
    runtime_profile: str = Field(description="the runtime profile it complies with")
    source_module_path: str = Field(description="the module file as given")
    module_kind: ModuleKind = Field(description="core (a core module) or component")
    artifact_path: str = Field(
        description="the artifact written: `<output dir>/<blueprint_id>/<sha256>.wasm`")
    artifact_sha256: str = Field(description="SHA-256 of the artifact, 64 lowercase hex digits")
    artifact_size_bytes: int = Field(description="size of the artifact, in bytes")
    manifest_path: str = Field(
        description="the manifest written: `<output dir>/<blueprint_id>/<sha256>.manifest.json`")
    state_path: str = Field(description="the state.json that lists the deliverable")
    state_updated: bool = Field(description="whether state.json was written (always, as the seed)")
    capability_constraints: list[str] = Field(
        description="the profile's capability constraints (its feature gates)")
    constraint_profile_id: str = Field(description="the profile's constraint profile id")
    compliance_reason_codes: list[str] = Field(
        description="advisory codes found (only abi_assumed_no_imports can appear)")
    observed_import_modules: list[str] = Field(
        description="sorted, distinct import module names, as wasmtime reads them")


class NonCompliantPackage(NonCompliantModule):
    """Packaging refused a module; ``check`` holds the full verdict for reports."""

    def __init__(self, check: ComplianceCheck) -> None:
        codes = check.compliance_reason_codes
        super().__init__(
            f"module {check.source_module_path} is not compliant with runtime profile "
            f"{check.runtime_profile} ({check.constraint_profile_id}): "
            f"reason_codes={','.join(codes)}; nothing was written",
            reason_codes=codes,
        )
        self.check = check


@dataclass(frozen=True)
class _Checked:
    data: bytes
    parsed: ParsedModule
    check: ComplianceCheck


def _check(
    module_path: Path, *, blueprint_id: str, runtime_profile: str, validate: bool = True
) -> _Checked:
    blueprint_id = blueprint_id.strip()  # the seed trims it for the folder, manifest and state
    if not blueprint_id:
        raise UsageError("blueprint id must not be empty")
    profile = get_profile(runtime_profile)
    data = read_module_bytes(module_path)
    try:
        parsed = parse_module(data, source=str(module_path), validate=validate)
    except WasmModuleError:
        if not validate:  # prefer the validator's account of what is wrong
            validate_module(data, source=str(module_path))
        raise
    codes = compliance_reason_codes(
        profile.constraints,
        runtime_profile=profile.name,
        artifact_size_bytes=parsed.size_bytes,
        capability_constraints=profile.capability_constraints,
        import_modules=parsed.import_modules,
    )
    check = ComplianceCheck(
        blueprint_id=blueprint_id,
        runtime_profile=profile.name,
        source_module_path=str(module_path),
        module_kind=parsed.kind,
        artifact_sha256=hashlib.sha256(data).hexdigest(),
        artifact_size_bytes=parsed.size_bytes,
        constraint_profile_id=profile.constraints.profile_id,
        max_artifact_size_bytes=profile.constraints.max_artifact_size_bytes,
        observed_import_modules=list(parsed.import_modules),
        capability_constraints=profile.capability_constraints,
        compliance_reason_codes=codes,
        compliant=is_compliant(codes),
    )
    return _Checked(data=data, parsed=parsed, check=check)


def check_module(
    module_path: Path,
    *,
    blueprint_id: str = DEFAULT_BLUEPRINT_ID,
    runtime_profile: str = DEFAULT_RUNTIME_PROFILE,
) -> ComplianceCheck:
    """Check a module against a runtime profile without writing anything (a dry run).

    The profile's rules (size limit, allowed import modules, capabilities) are
    SPEC section 6's; see :data:`~tau_ops.wasm.PROFILES`.

    Parameters
    ----------
    module_path : Path
        A WebAssembly core module or component (``.wasm``).
    blueprint_id : str, default "edge-wasm"
        The blueprint the module is for.
    runtime_profile : str, default "wasm_wasi"
        The runtime profile to check against.

    Returns
    -------
    ComplianceCheck
        The verdict: ``compliant``, ``compliance_reason_codes``, the module's
        sha256 and size (bytes) and observed imports.

    Raises
    ------
    WasmModuleError
        The file cannot be read or is not valid WebAssembly (exit 2).
    UsageError
        The runtime profile is unknown or the blueprint id is empty.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     check = check_module(module)
    >>> check.compliant, check.module_kind, check.compliance_reason_codes
    (True, 'core', [])
    """
    return _check(Path(module_path), blueprint_id=blueprint_id,
                  runtime_profile=runtime_profile).check


def _existing_manifest(path: Path) -> WasmManifest | None:
    if not path.exists():
        return None
    try:
        return WasmManifest.model_validate(read_manifest_json(path))
    except (ManifestError, ValidationError):  # unreadable or foreign: rewrite it
        return None


def _write_artifact(path: Path, data: bytes, sha: str, root: Path | None = None) -> None:
    try:  # bounded, regular files only: a FIFO planted there is replaced, never read
        present = jsonio.read_bounded(path, max_bytes=len(data), what="artifact")
        if hashlib.sha256(present).hexdigest() == sha:
            return  # already there, byte-identical: packaging twice is idempotent
    except OSError:
        pass  # missing, another size, or not a regular file: (re)write it
    storage.atomic_write_bytes(path, data, root=root)


def _done() -> Future[None]:
    finished: Future[None] = Future()
    finished.set_result(None)
    return finished


def _key(entry: dict[str, Any]) -> tuple[str | None, str | None]:
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None
    return (text(entry.get("blueprint_id")), text(entry.get("runtime_profile")))


def package_module(
    module_path: Path | str,
    *,
    state_dir: Path | str,
    blueprint_id: str = DEFAULT_BLUEPRINT_ID,
    runtime_profile: str = DEFAULT_RUNTIME_PROFILE,
    output_dir: Path | str | None = None,
    clock: Clock = wall_clock_ms,
) -> PackageReport:
    """Package a compliant module into ``<output_dir>/<blueprint_id>/<sha>.{wasm,manifest.json}``.

    Packaging the same module again leaves the files and the state entry as
    they were. The manifest's fields are SPEC section 6's.

    Parameters
    ----------
    module_path : Path or str
        A WebAssembly core module or component.
    state_dir : Path or str
        The state directory; its ``state.json`` lists the deliverable.
    blueprint_id : str, default "edge-wasm"
        The blueprint the module is for (its folder under ``output_dir``).
    runtime_profile : str, default "wasm_wasi"
        The runtime profile to check against.
    output_dir : Path or str, optional
        Where artifacts go; default ``<state_dir>/wasm-artifacts``.
    clock : callable, default wall_clock_ms
        ``() -> int``, Unix epoch milliseconds (ms) for the manifest's time.

    Returns
    -------
    PackageReport
        The artifact and manifest paths, sha256, size (bytes) and constraints.

    Raises
    ------
    NonCompliantPackage
        The module breaks its profile; nothing is written (exit 1).
    WasmModuleError
        The module is not valid WebAssembly (exit 2).
    UsageError
        The runtime profile is unknown or the blueprint id is empty.
    StateError
        The state or the files cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     report = package_module(module, state_dir=Path(tmp) / "state",
    ...                             clock=lambda: 1_700_000_000_000)
    ...     Path(report.manifest_path).name == f"{report.artifact_sha256}.manifest.json"
    True
    """
    module_path, state_dir = Path(module_path), Path(state_dir)
    with ThreadPoolExecutor(max_workers=3) as pool:  # validation beside the two file writes
        return _package(pool, module_path, state_dir=state_dir, blueprint_id=blueprint_id,
                        runtime_profile=runtime_profile, output_dir=output_dir, clock=clock)


def _missing_dirs(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _undo_writes(writes: list[Future[None]], existed: dict[Path, bool],
                 created: list[Path]) -> None:
    """Remove what the overlapped writes left, when validation refused the module."""
    for write in writes:
        with contextlib.suppress(Exception):
            write.result()
    for path, was_there in existed.items():
        if not was_there:
            with contextlib.suppress(OSError):
                path.unlink()
    for folder in created:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _package(
    pool: ThreadPoolExecutor,
    module_path: Path,
    *,
    state_dir: Path,
    blueprint_id: str,
    runtime_profile: str,
    output_dir: Path | str | None,
    clock: Clock,
) -> PackageReport:
    # Import listing, hashing and compliance need no validation, so a non-compliant
    # module is refused before anything is written. Full validation (the slow part)
    # then runs beside the artifact and manifest writes (mostly fsync waits); if it
    # fails, both are removed again before state.json is ever touched.
    checked = _check(module_path, blueprint_id=blueprint_id, runtime_profile=runtime_profile,
                     validate=False)
    check = checked.check
    blueprint_id = check.blueprint_id
    validating: Future[None] = (
        pool.submit(validate_module, checked.data, source=str(module_path))
        if not checked.parsed.validated else _done())
    if not check.compliant:
        validating.result()  # an invalid module is bad input (exit 2) before non-compliant
        raise NonCompliantPackage(check)
    profile = get_profile(check.runtime_profile)
    out_root = Path(output_dir) if output_dir is not None else StatePaths(state_dir).wasm_artifacts
    folder = out_root / storage.safe_component(blueprint_id)
    sha = check.artifact_sha256
    artifact = folder / f"{sha}.wasm"
    manifest_path = folder / f"{sha}.manifest.json"
    now_ms = clock()
    manifest = WasmManifest(
        schema_version=1,
        manifest_kind="tau_wasm_deliverable",
        blueprint_id=blueprint_id,
        deploy_target="wasm",
        runtime_profile=profile.name,
        source_module_path=str(module_path),
        artifact_path=artifact.name,
        artifact_sha256=sha,
        artifact_size_bytes=check.artifact_size_bytes,
        generated_unix_ms=now_ms,
        capability_constraints=profile.capability_constraints,
        runtime_constraints=profile.constraints,
        observed_import_modules=check.observed_import_modules,
    )
    existing = _existing_manifest(manifest_path)
    if existing is not None and existing.same_content(manifest):
        manifest = existing
    # Inside the state dir no component may be a link, even before its first lock file.
    inside = Path(os.path.abspath(folder)).is_relative_to(os.path.abspath(state_dir))
    root = Path(state_dir) if inside else None
    if root is not None:
        storage.refuse_links_below(root, folder)
    created = _missing_dirs(folder)
    existed = {artifact: artifact.exists(), manifest_path: manifest_path.exists()}
    writes = [pool.submit(_write_artifact, artifact, checked.data, sha, root)]
    if manifest is not existing:
        writes.append(pool.submit(storage.atomic_write_json, manifest_path,
                                  manifest.model_dump(mode="json"), root=root))
    try:
        validating.result()
    except WasmModuleError:
        _undo_writes(writes, existed, created)
        raise
    for write in writes:  # state.json points at both files: they must be durable first
        write.result()
    entry = WasmDeliverable(
        blueprint_id=blueprint_id,
        runtime_profile=profile.name,
        constraint_profile_id=profile.constraints.profile_id,
        required_abi=profile.constraints.required_abi,
        required_feature_gates=list(profile.constraints.required_feature_gates),
        artifact_path=str(artifact),
        artifact_sha256=sha,
        artifact_size_bytes=check.artifact_size_bytes,
        manifest_path=str(manifest_path),
        generated_unix_ms=manifest.generated_unix_ms,
    )

    def upsert(state: DeploymentState) -> None:
        # As the seed: replace the first entry with the same key where it stands, else append.
        new = entry.model_dump(mode="json")
        for index, current in enumerate(state.wasm_deliverables):
            if _key(current) == entry.key:
                state.wasm_deliverables[index] = new
                return
        state.wasm_deliverables.append(new)

    update_state(state_dir, upsert, now_ms=now_ms)
    return PackageReport(
        blueprint_id=blueprint_id,
        runtime_profile=profile.name,
        source_module_path=str(module_path),
        module_kind=check.module_kind,
        artifact_path=str(artifact),
        artifact_sha256=sha,
        artifact_size_bytes=check.artifact_size_bytes,
        manifest_path=str(manifest_path),
        state_path=str(StatePaths(state_dir).state),
        state_updated=True,  # as the seed: state.json is written on every packaging
        capability_constraints=profile.capability_constraints,
        constraint_profile_id=profile.constraints.profile_id,
        compliance_reason_codes=check.compliance_reason_codes,
        observed_import_modules=check.observed_import_modules,
    )
