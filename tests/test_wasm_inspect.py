"""Inspection re-verifies a deliverable: tampering is reported, never accepted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from builders import TESTDATA

from tau_ops.errors import ManifestError
from tau_ops.wasm import inspect_manifest, load_verified_manifest, package_module

WASM_DIR = TESTDATA / "deployment-wasm"


@pytest.fixture
def packaged(tmp_path: Path) -> Path:
    report = package_module(WASM_DIR / "wasi-p2-core.wasm", state_dir=tmp_path / "state")
    return Path(report.manifest_path)


def edit(manifest: Path, **changes: object) -> None:
    data = json.loads(manifest.read_text())
    data.update(changes)
    manifest.write_text(json.dumps(data))


def test_untouched_deliverable_is_compliant(packaged: Path) -> None:
    report = inspect_manifest(packaged)
    assert (report.compliant, report.reason_codes, report.details) == (True, [], [])
    assert report.constraint_profile_id == "control_plane_gateway_v1"
    assert report.constraint_target_role == "control_plane_gateway"
    assert report.required_runtime_profile == "wasm_wasi"
    assert report.required_abi == "wasi:*"
    assert report.max_artifact_size_bytes == 2 * 1024 * 1024
    assert report.observed_import_modules == [
        "env", "wasi:cli/environment@0.2.0", "wasi:clocks/monotonic-clock@0.2.0"
    ]
    assert report.module_kind == "core"


def test_flipping_one_byte_of_the_artifact_is_reported(packaged: Path) -> None:
    artifact = packaged.parent / json.loads(packaged.read_text())["artifact_path"]
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0x01
    artifact.write_bytes(bytes(data))
    report = inspect_manifest(packaged)
    assert report.compliant is False
    assert report.reason_codes[0] == "artifact_sha256_mismatch"


def test_truncated_artifact_reports_hash_size_and_parse(packaged: Path) -> None:
    artifact = packaged.parent / json.loads(packaged.read_text())["artifact_path"]
    artifact.write_bytes(artifact.read_bytes()[:-4])
    report = inspect_manifest(packaged)
    assert report.reason_codes == [
        "artifact_sha256_mismatch", "artifact_size_mismatch", "artifact_invalid_module"
    ]


def test_missing_artifact_is_reported(packaged: Path) -> None:
    (packaged.parent / json.loads(packaged.read_text())["artifact_path"]).unlink()
    assert inspect_manifest(packaged).reason_codes == ["artifact_missing"]


@pytest.mark.parametrize("artifact_path", ["../outside.wasm", "/etc/passwd", "sub/x.wasm", ".."])
def test_artifact_path_outside_the_folder_is_refused(packaged: Path, artifact_path: str) -> None:
    edit(packaged, artifact_path=artifact_path)
    report = inspect_manifest(packaged)
    assert report.compliant is False
    assert report.reason_codes == ["artifact_outside_manifest_dir"]


def test_symlink_escaping_the_folder_is_refused(packaged: Path, tmp_path: Path) -> None:
    name = json.loads(packaged.read_text())["artifact_path"]
    outside = tmp_path / "elsewhere.wasm"
    shutil.move(packaged.parent / name, outside)
    os.symlink(outside, packaged.parent / name)
    assert inspect_manifest(packaged).reason_codes == ["artifact_outside_manifest_dir"]


def test_swapped_artifact_with_rewritten_hash_is_caught_by_name(packaged: Path) -> None:
    other = (WASM_DIR / "edge-runtime.wasm").read_bytes()
    name = json.loads(packaged.read_text())["artifact_path"]
    (packaged.parent / name).write_bytes(other)
    edit(packaged, artifact_sha256=hashlib.sha256(other).hexdigest(), artifact_size_bytes=8)
    report = inspect_manifest(packaged)
    assert report.compliant is False
    assert report.reason_codes == [
        "abi_assumed_no_imports", "manifest_name_mismatch", "artifact_name_mismatch",
        "observed_imports_mismatch", "source_module_mismatch",
    ]


def test_edited_constraints_are_reported(packaged: Path) -> None:
    data = json.loads(packaged.read_text())
    data["runtime_constraints"]["max_artifact_size_bytes"] = 10**9
    data["runtime_constraints"]["allowed_import_modules"].append("*")
    data["capability_constraints"] = data["capability_constraints"][1:]
    packaged.write_text(json.dumps(data))
    report = inspect_manifest(packaged)
    assert report.max_artifact_size_bytes == 2 * 1024 * 1024  # the built-in profile, not the file
    assert report.reason_codes == [
        "required_feature_gate_missing", "runtime_constraints_mismatch",
    ]


def test_switched_runtime_profile_is_a_mismatch(packaged: Path) -> None:
    edit(packaged, runtime_profile="channel_automation_wasi")
    report = inspect_manifest(packaged)
    assert report.constraint_profile_id == "channel_automation_runtime_v1"
    assert report.reason_codes == [
        "runtime_profile_mismatch", "required_feature_gate_missing",
        "runtime_constraints_mismatch",
    ]


def test_unknown_runtime_profile_is_reported(packaged: Path) -> None:
    edit(packaged, runtime_profile="native")
    assert inspect_manifest(packaged).reason_codes == [
        "runtime_profile_mismatch", "runtime_profile_unknown"
    ]


@pytest.mark.parametrize(
    "changes",
    [{"manifest_kind": "other"}, {"schema_version": 2}, {"deploy_target": "kubernetes"},
     {"artifact_sha256": "ABC"}, {"observed_import_modules": "env"}],
)
def test_schema_violations_are_reported(packaged: Path, changes: dict[str, object]) -> None:
    edit(packaged, **changes)
    report = inspect_manifest(packaged)
    assert (report.compliant, report.reason_codes) == (False, ["manifest_schema_invalid"])
    assert report.blueprint_id == "edge-wasm"


def test_unreadable_or_non_json_manifest_raises(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest"):
        inspect_manifest(tmp_path / "missing.manifest.json")
    bad = tmp_path / "bad.manifest.json"
    bad.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        inspect_manifest(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ManifestError, match="JSON object"):
        inspect_manifest(bad)


def test_load_verified_manifest_returns_rollout_fields(packaged: Path) -> None:
    manifest = json.loads(packaged.read_text())
    verified = load_verified_manifest(packaged)
    assert (verified.runtime_profile, verified.artifact_path, verified.artifact_sha256,
            verified.artifact_size_bytes, verified.capability_constraints) == (
        "wasm_wasi", manifest["artifact_path"], manifest["artifact_sha256"],
        manifest["artifact_size_bytes"], manifest["capability_constraints"])
    assert verified.artifact_file.read_bytes() == (WASM_DIR / "wasi-p2-core.wasm").read_bytes()


def test_load_verified_manifest_refuses_tampering(packaged: Path) -> None:
    artifact = packaged.parent / json.loads(packaged.read_text())["artifact_path"]
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ManifestError, match="artifact_sha256_mismatch"):
        load_verified_manifest(packaged)


def test_edited_blueprint_id_is_reported(packaged: Path) -> None:
    edit(packaged, blueprint_id="prod-wasm")
    report = inspect_manifest(packaged)
    assert (report.compliant, report.reason_codes) == (False, ["blueprint_id_mismatch"])
    assert report.details == ["blueprint_id_mismatch: blueprint_id 'prod-wasm' belongs in "
                              "folder 'prod-wasm', the manifest lies in 'edge-wasm'"]


def test_edited_source_module_path_is_reported(packaged: Path) -> None:
    edit(packaged, source_module_path=str(WASM_DIR / "component.wasm"))
    assert inspect_manifest(packaged).reason_codes == ["source_module_mismatch"]
    edit(packaged, source_module_path="  ")
    assert inspect_manifest(packaged).reason_codes == ["manifest_schema_invalid"]


def test_source_module_gone_since_packaging_is_fine(tmp_path: Path) -> None:
    source = tmp_path / "build" / "edge.wasm"
    source.parent.mkdir()
    shutil.copy(WASM_DIR / "wasi-p2-core.wasm", source)
    report = package_module(source, state_dir=tmp_path / "state")
    source.unlink()
    assert inspect_manifest(Path(report.manifest_path)).reason_codes == []


def test_renamed_manifest_is_reported(packaged: Path) -> None:
    renamed = packaged.with_name("latest.manifest.json")
    packaged.rename(renamed)
    assert inspect_manifest(renamed).reason_codes == ["manifest_name_mismatch"]


def test_manifest_as_the_seed_accepts_it_is_compliant(packaged: Path) -> None:
    # unknown fields, omitted defaultable fields, extra capability constraints
    data = json.loads(packaged.read_text())
    for field in ("schema_version", "manifest_kind", "runtime_constraints",
                  "observed_import_modules"):
        del data[field]
    data["capability_constraints"].append("site_specific_gate")
    data["signed_by"] = "release-bot"
    packaged.write_text(json.dumps(data))
    report = inspect_manifest(packaged)
    assert (report.compliant, report.reason_codes, report.details) == (True, [], [])
    assert report.observed_import_modules == [
        "env", "wasi:cli/environment@0.2.0", "wasi:clocks/monotonic-clock@0.2.0"]
    del data["capability_constraints"]  # defaults to the base gates, as in the seed
    packaged.write_text(json.dumps(data))
    assert inspect_manifest(packaged).reason_codes == []


def test_seed_leniency_never_skips_the_security_checks(packaged: Path) -> None:
    edit(packaged, artifact_path="/etc/passwd", extra_field=1)
    assert inspect_manifest(packaged).reason_codes == ["artifact_outside_manifest_dir"]
    edit(packaged, artifact_path=json.loads(packaged.read_text())["artifact_sha256"] + ".wasm",
         artifact_size_bytes=9)
    assert inspect_manifest(packaged).reason_codes == ["artifact_size_mismatch"]


def test_deeply_nested_manifest_is_bad_input(tmp_path: Path) -> None:
    deep = tmp_path / "deep.manifest.json"
    deep.write_text('{"a": ' * 1000 + "1" + "}" * 1000)
    with pytest.raises(ManifestError, match="nesting deeper than 64 levels"):
        inspect_manifest(deep)
    with pytest.raises(ManifestError, match="nesting deeper than 64 levels"):
        load_verified_manifest(deep)


def test_non_regular_manifest_and_artifact_are_refused_unread(packaged: Path) -> None:
    with pytest.raises(ManifestError, match=r"not a regular file \(character device\)"):
        inspect_manifest(Path("/dev/zero"))
    artifact = packaged.parent / json.loads(packaged.read_text())["artifact_path"]
    artifact.unlink()
    os.mkfifo(artifact)
    report = inspect_manifest(packaged)  # a blocking read would hang here
    assert report.reason_codes == ["artifact_unreadable"]
    assert report.details == [f"artifact_unreadable: artifact {artifact} is not a regular "
                              "file (FIFO)"]


def test_a_relative_source_path_is_not_judged_from_another_folder(
    packaged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "edge-runtime.wasm").write_bytes((WASM_DIR / "component.wasm").read_bytes())
    edit(packaged, source_module_path="edge-runtime.wasm")
    monkeypatch.chdir(elsewhere)
    assert inspect_manifest(packaged).reason_codes == []


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_schema_version_must_be_the_json_integer_1(packaged: Path, version: object) -> None:
    edit(packaged, schema_version=version)
    assert inspect_manifest(packaged).reason_codes == ["manifest_schema_invalid"]
