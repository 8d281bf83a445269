"""Runtime profiles, their constraint profiles, and the compliance rules of SPEC section 6."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from tau_ops.errors import UsageError

MIB = 1024 * 1024

BASE_FEATURE_GATES: tuple[str, ...] = (
    "no_native_process_exec",
    "filesystem_limited_to_preopened_dirs",
    "network_access_requires_host_capability",
    "deterministic_time_requires_host_injection",
)
CHANNEL_DISPATCH_GATE = "channel_event_dispatch_host_capability"

# Compliance reason codes, in the order SPEC section 6 reports them.
RUNTIME_PROFILE_MISMATCH = "runtime_profile_mismatch"
ARTIFACT_SIZE_LIMIT_EXCEEDED = "artifact_size_limit_exceeded"
REQUIRED_FEATURE_GATE_MISSING = "required_feature_gate_missing"
ABI_ASSUMED_NO_IMPORTS = "abi_assumed_no_imports"
REQUIRED_ABI_MISSING = "required_abi_missing"
IMPORT_MODULE_NOT_ALLOWLISTED = "import_module_not_allowlisted"
IMPORT_MODULE_FORBIDDEN = "import_module_forbidden"
COMPLIANCE_REASON_CODES: tuple[str, ...] = (
    RUNTIME_PROFILE_MISMATCH,
    ARTIFACT_SIZE_LIMIT_EXCEEDED,
    REQUIRED_FEATURE_GATE_MISSING,
    ABI_ASSUMED_NO_IMPORTS,
    REQUIRED_ABI_MISSING,
    IMPORT_MODULE_NOT_ALLOWLISTED,
    IMPORT_MODULE_FORBIDDEN,
)
# The one code that does not make a module non-compliant.
ADVISORY_CODES = frozenset({ABI_ASSUMED_NO_IMPORTS})


DEFAULT_ALLOWED_IMPORT_MODULES: tuple[str, ...] = ("wasi:*", "env")
DEFAULT_FORBIDDEN_IMPORT_MODULES: tuple[str, ...] = ("wasi_snapshot_preview1", "wasi_unstable")


class RuntimeConstraints(BaseModel):
    """The constraint profile object a manifest carries as ``runtime_constraints``.

    Read as the seed reads it: unknown fields are ignored, and the gate and
    import lists default to the base profile's when omitted. Field order is
    the seed's. The two built-in profiles are SPEC section 6's table; see
    :data:`PROFILES`.

    Examples
    --------
    >>> c = PROFILES["channel_automation_wasi"].constraints
    >>> c.profile_id, c.required_abi, c.max_artifact_size_bytes
    ('channel_automation_runtime_v1', 'wasi:*', 1048576)
    >>> RuntimeConstraints.model_validate({
    ...     "schema_version": 1, "profile_id": "p", "target_role": "r",
    ...     "required_runtime_profile": "wasm_wasi", "required_abi": "wasi:*",
    ...     "max_artifact_size_bytes": 1024, "unknown": "ignored"}).allowed_import_modules
    ['wasi:*', 'env']
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    schema_version: int = Field(description="constraint profile schema version (1)")
    profile_id: str = Field(
        description="constraint profile id: control_plane_gateway_v1 or "
        "channel_automation_runtime_v1")
    target_role: str = Field(
        description="what the module runs as: control_plane_gateway or "
        "channel_automation_runtime")
    required_runtime_profile: str = Field(
        description="the runtime profile a module must be packaged under (wasm_wasi, "
        "channel_automation_wasi)")
    required_abi: str = Field(
        description="pattern at least one import module must match (wasi:*; a trailing * "
        "is a prefix match)")
    required_feature_gates: list[str] = Field(
        default_factory=lambda: list(BASE_FEATURE_GATES),
        description="capability constraints a deliverable must declare (SPEC section 6)")
    allowed_import_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_IMPORT_MODULES),
        description="patterns every import module must match (empty: any module)")
    forbidden_import_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FORBIDDEN_IMPORT_MODULES),
        description="patterns no import module may match (pre-component WASI ABIs)")
    max_artifact_size_bytes: int = Field(
        description="largest artifact allowed, in bytes (2 MiB or 1 MiB)")


@dataclass(frozen=True)
class RuntimeProfile:
    """A runtime profile and the constraints a module must meet to ship under it.

    Attributes
    ----------
    name : str
        The runtime profile as a fixture case and a manifest name it
        (``wasm_wasi`` or ``channel_automation_wasi``).
    constraints : RuntimeConstraints
        Its constraint profile (SPEC section 6's table, the seed's values).

    Examples
    --------
    >>> profile = get_profile("wasm-wasi")
    >>> profile.name, profile.constraints.profile_id
    ('wasm_wasi', 'control_plane_gateway_v1')
    >>> profile.capability_constraints[0]
    'no_native_process_exec'
    """

    name: str
    constraints: RuntimeConstraints

    @property
    def capability_constraints(self) -> list[str]:
        """Capability constraints equal the feature gates (SPEC section 6)."""
        return list(self.constraints.required_feature_gates)


def _profile(
    name: str, profile_id: str, role: str, max_bytes: int, gates: Sequence[str]
) -> RuntimeProfile:
    return RuntimeProfile(
        name=name,
        constraints=RuntimeConstraints(
            schema_version=1,
            profile_id=profile_id,
            target_role=role,
            required_runtime_profile=name,
            required_abi="wasi:*",
            required_feature_gates=list(gates),
            allowed_import_modules=list(DEFAULT_ALLOWED_IMPORT_MODULES),
            forbidden_import_modules=list(DEFAULT_FORBIDDEN_IMPORT_MODULES),
            max_artifact_size_bytes=max_bytes,
        ),
    )


PROFILES: dict[str, RuntimeProfile] = {
    "wasm_wasi": _profile(
        "wasm_wasi", "control_plane_gateway_v1", "control_plane_gateway", 2 * MIB,
        BASE_FEATURE_GATES,
    ),
    "channel_automation_wasi": _profile(
        "channel_automation_wasi", "channel_automation_runtime_v1",
        "channel_automation_runtime", 1 * MIB, (*BASE_FEATURE_GATES, CHANNEL_DISPATCH_GATE),
    ),
}


def normalize_profile_name(value: str) -> str:
    """``wasm-wasi``/``Wasm_WASI`` -> ``wasm_wasi``; no check that it exists.

    Parameters
    ----------
    value : str
        A runtime profile as an operator may spell it.

    Returns
    -------
    str
        Trimmed, lower-cased, dashes as underscores.

    Examples
    --------
    >>> normalize_profile_name(" Channel-Automation-WASI ")
    'channel_automation_wasi'
    """
    return value.strip().lower().replace("-", "_")


def get_profile(value: str) -> RuntimeProfile:
    """The built-in runtime profile named ``value``.

    The CLI spellings of SPEC section 6 are accepted: dashes or underscores,
    any case, surrounding spaces ignored.

    Parameters
    ----------
    value : str
        ``wasm_wasi``/``wasm-wasi`` or
        ``channel_automation_wasi``/``channel-automation-wasi``.

    Returns
    -------
    RuntimeProfile
        The profile from :data:`PROFILES`.

    Raises
    ------
    UsageError
        No such profile; the message lists the known ones (exit 2).

    Examples
    --------
    >>> get_profile(" Channel-Automation-WASI ").constraints.max_artifact_size_bytes
    1048576
    >>> get_profile("native")
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: unknown runtime profile 'native' (expected one of: ...)
    """
    name = normalize_profile_name(value)
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UsageError(f"unknown runtime profile {value!r} (expected one of: {known})") from None


def matches(pattern: str, module: str) -> bool:
    """A pattern ending in ``*`` is a prefix match, otherwise exact (trimmed; empty: none).

    The seed's import-module pattern rule (SPEC section 6).

    Parameters
    ----------
    pattern : str
        ``wasi:*``, ``env``...
    module : str
        An import module name.

    Returns
    -------
    bool
        Whether ``module`` matches.

    Examples
    --------
    >>> matches("wasi:*", "wasi:io/poll"), matches("env", "envx"), matches(" ", "")
    (True, False, False)
    """
    pattern = pattern.strip()
    if not pattern:
        return False
    if pattern.endswith("*"):
        return module.startswith(pattern[:-1])
    return module == pattern


def _any_match(patterns: Iterable[str], module: str) -> bool:
    return any(matches(p, module) for p in patterns)


def compliance_reason_codes(
    constraints: RuntimeConstraints,
    *,
    runtime_profile: str,
    artifact_size_bytes: int,
    capability_constraints: Sequence[str],
    import_modules: Sequence[str],
) -> list[str]:
    """Reason codes for a module under ``constraints``, in SPEC order (the seed's rules).

    An import that matches no allowed pattern earns ``import_module_not_allowlisted``
    even when it is also forbidden, so ``wasi_snapshot_preview1`` alone gives
    ``required_abi_missing, import_module_not_allowlisted, import_module_forbidden``.
    An empty allow-list allows every module; an empty pattern matches nothing.

    Examples
    --------
    >>> from tau_ops.wasm.profiles import PROFILES
    >>> p = PROFILES["wasm_wasi"]
    >>> compliance_reason_codes(p.constraints, runtime_profile="wasm_wasi",
    ...     artifact_size_bytes=8, capability_constraints=p.capability_constraints,
    ...     import_modules=["wasi_snapshot_preview1"])
    ['required_abi_missing', 'import_module_not_allowlisted', 'import_module_forbidden']
    """
    codes: list[str] = []
    if constraints.required_runtime_profile.strip() != runtime_profile.strip():
        codes.append(RUNTIME_PROFILE_MISMATCH)
    if artifact_size_bytes > constraints.max_artifact_size_bytes:
        codes.append(ARTIFACT_SIZE_LIMIT_EXCEEDED)
    if any(gate not in capability_constraints for gate in constraints.required_feature_gates):
        codes.append(REQUIRED_FEATURE_GATE_MISSING)
    if not import_modules:
        codes.append(ABI_ASSUMED_NO_IMPORTS)
    elif not any(matches(constraints.required_abi, m) for m in import_modules):
        codes.append(REQUIRED_ABI_MISSING)
    allowed = constraints.allowed_import_modules
    if allowed and any(not _any_match(allowed, m) for m in import_modules):
        codes.append(IMPORT_MODULE_NOT_ALLOWLISTED)
    if any(_any_match(constraints.forbidden_import_modules, m) for m in import_modules):
        codes.append(IMPORT_MODULE_FORBIDDEN)
    return codes


def is_compliant(codes: Iterable[str]) -> bool:
    """Compliant = no reason code other than ``abi_assumed_no_imports`` (SPEC section 6).

    Parameters
    ----------
    codes : iterable of str
        Compliance reason codes (:func:`compliance_reason_codes`).

    Returns
    -------
    bool
        True when every code is advisory.

    Examples
    --------
    >>> is_compliant([]), is_compliant(["abi_assumed_no_imports"])
    (True, True)
    >>> is_compliant(["artifact_size_limit_exceeded"])
    False
    """
    return all(code in ADVISORY_CODES for code in codes)
