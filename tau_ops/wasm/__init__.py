"""WASM deliverables: profiles, packaging, inspection and the smoke harness (SPEC section 6)."""

from __future__ import annotations

from tau_ops.wasm.inspect import (
    InspectReport,
    VerifiedManifest,
    inspect_manifest,
    load_verified_manifest,
)
from tau_ops.wasm.manifest import WasmDeliverable, WasmManifest
from tau_ops.wasm.package import (
    ComplianceCheck,
    NonCompliantPackage,
    PackageReport,
    check_module,
    package_module,
)
from tau_ops.wasm.parse import ParsedModule, parse_file, parse_module
from tau_ops.wasm.profiles import PROFILES, RuntimeConstraints, RuntimeProfile, get_profile
from tau_ops.wasm.smoke import ModuleSmoke, SandboxPolicy, SmokeReport, smoke_run

__all__ = [
    "PROFILES",
    "ComplianceCheck",
    "InspectReport",
    "ModuleSmoke",
    "NonCompliantPackage",
    "PackageReport",
    "ParsedModule",
    "RuntimeConstraints",
    "RuntimeProfile",
    "SandboxPolicy",
    "SmokeReport",
    "VerifiedManifest",
    "WasmDeliverable",
    "WasmManifest",
    "check_module",
    "get_profile",
    "inspect_manifest",
    "load_verified_manifest",
    "package_module",
    "parse_file",
    "parse_module",
    "smoke_run",
]
