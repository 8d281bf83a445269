"""The seed's own WASM assertions (crates/tau-deployment/src/deployment_wasm.rs), run on tau-ops.

Each test names the seed test it mirrors. Facts only: the seed's compliance
rules, what its manifest reader accepts and refuses, the shape of its
``wasm_deliverables`` entry and its text lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tau_ops.cli.wasm import render_inspect, render_package
from tau_ops.wasm import inspect_manifest, load_verified_manifest, package_module
from tau_ops.wasm.profiles import PROFILES, compliance_reason_codes

BASE_GATES = [
    "no_native_process_exec",
    "filesystem_limited_to_preopened_dirs",
    "network_access_requires_host_capability",
    "deterministic_time_requires_host_injection",
]

# The seed's state entry (upsert_state_with_wasm_deliverable), field by field, in its order.
SEED_DELIVERABLE_SCHEMA: list[tuple[str, type]] = [
    ("schema_version", int),
    ("blueprint_id", str),
    ("deploy_target", str),
    ("runtime_profile", str),
    ("constraint_profile_id", str),
    ("required_abi", str),
    ("required_feature_gates", list),
    ("artifact_path", str),
    ("artifact_sha256", str),
    ("artifact_size_bytes", int),
    ("manifest_path", str),
    ("generated_unix_ms", int),
]


def seed_module(tmp_path: Path, name: str = "edge.wasm") -> Path:
    """The seed's write_test_wasm_module: the 8-byte empty core module."""
    path = tmp_path / name
    path.write_bytes(bytes([0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00]))
    return path


def package(tmp_path: Path, blueprint_id: str = "edge-wasm",
            runtime_profile: str = "wasm_wasi") -> Any:
    return package_module(seed_module(tmp_path), blueprint_id=blueprint_id,
                          runtime_profile=runtime_profile, output_dir=tmp_path / "out",
                          state_dir=tmp_path / ".tau/deployment")


def codes(imports: list[str]) -> list[str]:
    profile = PROFILES["wasm_wasi"]
    return compliance_reason_codes(profile.constraints, runtime_profile="wasm_wasi",
                                   artifact_size_bytes=8,
                                   capability_constraints=BASE_GATES, import_modules=imports)


def test_spec_c01_runtime_constraints_default_to_wasi_preview2_abi_pattern() -> None:
    c = PROFILES["wasm_wasi"].constraints
    assert (c.required_abi, c.allowed_import_modules, c.forbidden_import_modules) == (
        "wasi:*", ["wasi:*", "env"], ["wasi_snapshot_preview1", "wasi_unstable"])


def test_spec_c02_wasi_preview2_wildcard_matcher_allows_wasi_namespace_modules() -> None:
    assert codes(["wasi:cli/environment@0.2.0"]) == []


def test_spec_c03_wasi_preview2_compliance_rejects_preview1_import_modules() -> None:
    assert codes(["wasi_snapshot_preview1"]) == [
        "required_abi_missing", "import_module_not_allowlisted", "import_module_forbidden"]


def test_functional_package_writes_manifest_and_state(tmp_path: Path) -> None:
    report = package(tmp_path)
    assert Path(report.artifact_path).exists() and Path(report.manifest_path).exists()
    assert Path(report.state_path).exists()
    assert (report.artifact_size_bytes, report.constraint_profile_id, report.state_updated,
            report.compliance_reason_codes) == (
        8, "control_plane_gateway_v1", True, ["abi_assumed_no_imports"])


def test_functional_package_supports_channel_automation_profile(tmp_path: Path) -> None:
    report = package(tmp_path, "channel-edge", "channel_automation_wasi")
    assert report.constraint_profile_id == "channel_automation_runtime_v1"
    assert report.capability_constraints == [*BASE_GATES,
                                             "channel_event_dispatch_host_capability"]


def test_wasm_deliverables_entry_is_the_seeds_struct(tmp_path: Path) -> None:
    report = package(tmp_path)
    package(tmp_path, "channel-edge", "channel_automation_wasi")
    again = package(tmp_path)  # replaced in place, state_updated as the seed: true
    assert again.state_updated is True
    entries = json.loads(Path(report.state_path).read_text())["wasm_deliverables"]
    assert [e["blueprint_id"] for e in entries] == ["edge-wasm", "channel-edge"]
    for entry in entries:
        assert [(k, type(v)) for k, v in entry.items()] == SEED_DELIVERABLE_SCHEMA
    assert entries[0] == {
        "schema_version": 1, "blueprint_id": "edge-wasm", "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi", "constraint_profile_id": "control_plane_gateway_v1",
        "required_abi": "wasi:*", "required_feature_gates": BASE_GATES,
        "artifact_path": again.artifact_path, "artifact_sha256": again.artifact_sha256,
        "artifact_size_bytes": 8, "manifest_path": again.manifest_path,
        "generated_unix_ms": entries[0]["generated_unix_ms"],
    }


def test_integration_load_manifest_verifies_hash_and_constraints(tmp_path: Path) -> None:
    report = package(tmp_path)
    verified = load_verified_manifest(Path(report.manifest_path))
    assert (verified.runtime_profile, verified.artifact_sha256,
            verified.constraint_profile_id) == (
        "wasm_wasi", report.artifact_sha256, "control_plane_gateway_v1")


@pytest.mark.parametrize(("profile", "role", "gates"), [
    ("wasm_wasi", "control_plane_gateway", BASE_GATES),
    ("channel_automation_wasi", "channel_automation_runtime",
     [*BASE_GATES, "channel_event_dispatch_host_capability"]),
])
def test_integration_inspect_reports_compliance_and_renders_the_seed_line(
        tmp_path: Path, profile: str, role: str, gates: list[str]) -> None:
    report = package(tmp_path, "edge-wasm-inspect", profile)
    inspect = inspect_manifest(Path(report.manifest_path))
    assert (inspect.compliant, inspect.reason_codes, inspect.constraint_target_role,
            inspect.required_runtime_profile, inspect.required_abi,
            inspect.required_feature_gates) == (
        True, ["abi_assumed_no_imports"], role, profile, "wasi:*", gates)
    assert render_inspect(inspect).splitlines()[0] == (
        f"deployment wasm inspect: manifest_path={report.manifest_path} "
        f"blueprint_id=edge-wasm-inspect runtime_profile={profile} "
        f"constraint_profile_id={report.constraint_profile_id} constraint_target_role={role} "
        f"required_runtime_profile={profile} required_abi=wasi:* compliant=true "
        f"reason_codes=abi_assumed_no_imports observed_import_modules=none "
        f"required_feature_gates={','.join(gates)} "
        f"max_artifact_size_bytes={inspect.max_artifact_size_bytes}")
    assert render_package(report).splitlines()[0] == (
        f"deployment wasm package: blueprint_id=edge-wasm-inspect runtime_profile={profile} "
        f"artifact_path={report.artifact_path} artifact_sha256={report.artifact_sha256} "
        f"artifact_size_bytes=8 manifest_path={report.manifest_path} "
        f"state_path={report.state_path} state_updated=true "
        f"constraint_profile_id={report.constraint_profile_id} "
        f"compliance_reason_codes=abi_assumed_no_imports constraints={','.join(gates)}")


def edit(manifest: Path, change: Any) -> None:
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data, indent=2))


def test_manifest_leniency_is_the_seeds(tmp_path: Path) -> None:
    report = package(tmp_path)
    manifest = Path(report.manifest_path)

    def lenient(data: dict[str, Any]) -> None:
        for field in ("schema_version", "manifest_kind", "observed_import_modules"):
            del data[field]  # serde defaults
        for field in ("required_feature_gates", "allowed_import_modules",
                      "forbidden_import_modules"):
            del data["runtime_constraints"][field]  # serde defaults
        data["capability_constraints"].append("operator_defined_gate")  # only gates checked
        data["unknown_top_level"] = {"x": 1}  # serde ignores unknown fields
        data["runtime_constraints"]["unknown_nested"] = True

    edit(manifest, lenient)
    inspected = inspect_manifest(manifest)
    assert (inspected.compliant, inspected.reason_codes) == (True, ["abi_assumed_no_imports"])
    load_verified_manifest(manifest)


@pytest.mark.parametrize(("change", "code"), [
    # unit_validate_deployment_wasm_manifest_rejects_invalid_target
    (lambda d: d.update(deploy_target="container"), "manifest_schema_invalid"),
    # regression_inspect_deployment_wasm_deliverable_fails_on_constraint_drift
    (lambda d: d["runtime_constraints"].update(max_artifact_size_bytes=1),
     "runtime_constraints_mismatch"),
    # unit_..._rejects_invalid_runtime_constraint_profile
    (lambda d: d["runtime_constraints"].update(max_artifact_size_bytes=0),
     "runtime_constraints_mismatch"),
    (lambda d: d.update(capability_constraints=[]), "manifest_schema_invalid"),
    (lambda d: d.update(capability_constraints=[*BASE_GATES, " "]), "manifest_schema_invalid"),
    (lambda d: d.update(generated_unix_ms=0), "manifest_schema_invalid"),
])
def test_manifests_the_seed_refuses_are_refused(tmp_path: Path, change: Any, code: str) -> None:
    manifest = Path(package(tmp_path).manifest_path)
    edit(manifest, change)
    report = inspect_manifest(manifest)
    assert (report.compliant, code in report.reason_codes) == (False, True)


def test_regression_channel_profile_id_drift_is_refused(tmp_path: Path) -> None:
    manifest = Path(package(tmp_path, "channel-edge-drift",
                            "channel_automation_wasi").manifest_path)
    edit(manifest, lambda d: d["runtime_constraints"].update(profile_id="invalid_v0"))
    assert inspect_manifest(manifest).reason_codes == [
        "abi_assumed_no_imports", "runtime_constraints_mismatch"]


def test_regression_hash_mismatch_is_refused(tmp_path: Path) -> None:
    report = package(tmp_path)
    Path(report.artifact_path).write_bytes(b"\x00asm\x01\x00\x00\x01")
    assert "artifact_sha256_mismatch" in inspect_manifest(Path(report.manifest_path)).reason_codes
