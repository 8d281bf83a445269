"""Packaging: compliance reason codes, refusals that write nothing, files, state upsert."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import wasmtime
from builders import TESTDATA

from tau_ops.clock import FakeClock
from tau_ops.errors import NonCompliantModule, UsageError, WasmModuleError
from tau_ops.wasm import check_module, package_module
from tau_ops.wasm.package import NonCompliantPackage
from tau_ops.wasm.profiles import PROFILES, compliance_reason_codes
from tau_ops.wasm.testing import large_core_module

WASM_DIR = TESTDATA / "deployment-wasm"
BASE_GATES = [
    "no_native_process_exec",
    "filesystem_limited_to_preopened_dirs",
    "network_access_requires_host_capability",
    "deterministic_time_requires_host_injection",
]


def module_importing(tmp_path: Path, *modules: str, name: str = "m.wasm") -> Path:
    imports = " ".join(f'(import "{m}" "f{i}" (func))' for i, m in enumerate(modules))
    path = tmp_path / name
    path.write_bytes(bytes(wasmtime.wat2wasm(f"(module {imports})")))
    return path


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("modules", "codes"),
    [
        ((), ["abi_assumed_no_imports"]),
        (("wasi:cli/run@0.2.0", "env"), []),
        (("env",), ["required_abi_missing"]),
        (("wasi:io/poll", "host_debug"), ["import_module_not_allowlisted"]),
        (("wasi:io/poll", "wasi_snapshot_preview1"),
         ["import_module_not_allowlisted", "import_module_forbidden"]),
        (("wasi_unstable",),
         ["required_abi_missing", "import_module_not_allowlisted", "import_module_forbidden"]),
        (("other", "wasi_snapshot_preview1"),
         ["required_abi_missing", "import_module_not_allowlisted", "import_module_forbidden"]),
    ],
)
def test_import_reason_codes(tmp_path: Path, modules: tuple[str, ...], codes: list[str]) -> None:
    check = check_module(module_importing(tmp_path, *modules))
    assert check.compliance_reason_codes == codes
    assert check.compliant == (codes in ([], ["abi_assumed_no_imports"]))


def test_profile_mismatch_size_and_gate_codes_come_first_in_spec_order() -> None:
    constraints = PROFILES["channel_automation_wasi"].constraints
    codes = compliance_reason_codes(
        constraints,
        runtime_profile="wasm_wasi",
        artifact_size_bytes=constraints.max_artifact_size_bytes + 1,
        capability_constraints=BASE_GATES,
        import_modules=["env", "wasi_unstable", "x"],
    )
    assert codes == [
        "runtime_profile_mismatch",
        "artifact_size_limit_exceeded",
        "required_feature_gate_missing",
        "required_abi_missing",
        "import_module_not_allowlisted",
        "import_module_forbidden",
    ]


def test_module_over_one_mib_is_refused_for_channel_automation_only(tmp_path: Path) -> None:
    big = tmp_path / "big.wasm"
    big.write_bytes(large_core_module(1024 * 1024 + 4096))
    state = tmp_path / "state"
    with pytest.raises(NonCompliantModule) as info:
        package_module(big, state_dir=state, runtime_profile="channel-automation-wasi")
    assert info.value.reason_codes == ["artifact_size_limit_exceeded"]
    assert "artifact_size_limit_exceeded" in str(info.value)
    assert not state.exists()
    report = package_module(big, state_dir=state, runtime_profile="wasm-wasi")
    assert report.compliance_reason_codes == []


def test_non_compliant_module_writes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"schema_version": 1, "rollouts": []}')
    with pytest.raises(NonCompliantPackage) as info:
        package_module(WASM_DIR / "wasi-preview1.wasm", state_dir=state)
    assert info.value.exit_code == 1
    assert info.value.check.compliance_reason_codes == [
        "required_abi_missing", "import_module_not_allowlisted", "import_module_forbidden"
    ]
    assert tree(state) == ["state.json"]
    assert (state / "state.json").read_text() == '{"schema_version": 1, "rollouts": []}'


def test_invalid_module_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm at all")
    with pytest.raises(WasmModuleError) as info:
        package_module(bad, state_dir=tmp_path / "state")
    assert info.value.exit_code == 2
    assert not (tmp_path / "state").exists()


def test_unknown_profile_and_empty_blueprint_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown runtime profile"):
        package_module(WASM_DIR / "edge-runtime.wasm", state_dir=tmp_path, runtime_profile="x")
    with pytest.raises(UsageError, match="blueprint id"):
        package_module(WASM_DIR / "edge-runtime.wasm", state_dir=tmp_path, blueprint_id=" ")


def test_compliant_module_writes_artifact_manifest_and_state(tmp_path: Path) -> None:
    source = WASM_DIR / "wasi-p2-core.wasm"
    data = source.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    state = tmp_path / "state"
    clock = FakeClock(1_700_000_000_000)
    report = package_module(source, state_dir=state, blueprint_id="edge/../wasm", clock=clock)
    folder = state / "wasm-artifacts" / "edge_.._wasm"
    assert tree(state) == sorted([
        ".tau-ops.lock", "state.json",
        f"wasm-artifacts/edge_.._wasm/{sha}.manifest.json",
        f"wasm-artifacts/edge_.._wasm/{sha}.wasm",
    ])
    assert (folder / f"{sha}.wasm").read_bytes() == data
    imports = ["env", "wasi:cli/environment@0.2.0", "wasi:clocks/monotonic-clock@0.2.0"]
    manifest = json.loads((folder / f"{sha}.manifest.json").read_text())
    assert manifest == {
        "schema_version": 1,
        "manifest_kind": "tau_wasm_deliverable",
        "blueprint_id": "edge/../wasm",
        "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi",
        "source_module_path": str(source),
        "artifact_path": f"{sha}.wasm",
        "artifact_sha256": sha,
        "artifact_size_bytes": len(data),
        "generated_unix_ms": 1_700_000_000_000,
        "capability_constraints": BASE_GATES,
        "runtime_constraints": {
            "schema_version": 1,
            "profile_id": "control_plane_gateway_v1",
            "target_role": "control_plane_gateway",
            "required_runtime_profile": "wasm_wasi",
            "required_abi": "wasi:*",
            "allowed_import_modules": ["wasi:*", "env"],
            "forbidden_import_modules": ["wasi_snapshot_preview1", "wasi_unstable"],
            "required_feature_gates": BASE_GATES,
            "max_artifact_size_bytes": 2 * 1024 * 1024,
        },
        "observed_import_modules": imports,
    }
    assert report.model_dump() == {
        "blueprint_id": "edge/../wasm",
        "runtime_profile": "wasm_wasi",
        "source_module_path": str(source),
        "module_kind": "core",
        "artifact_path": str(folder / f"{sha}.wasm"),
        "artifact_sha256": sha,
        "artifact_size_bytes": len(data),
        "manifest_path": str(folder / f"{sha}.manifest.json"),
        "state_path": str(state / "state.json"),
        "state_updated": True,
        "capability_constraints": BASE_GATES,
        "constraint_profile_id": "control_plane_gateway_v1",
        "compliance_reason_codes": [],
        "observed_import_modules": imports,
    }
    entries = json.loads((state / "state.json").read_text())["wasm_deliverables"]
    assert [list(e.items()) for e in entries] == [[  # the seed's fields, in its order
        ("schema_version", 1),
        ("blueprint_id", "edge/../wasm"),
        ("deploy_target", "wasm"),
        ("runtime_profile", "wasm_wasi"),
        ("constraint_profile_id", "control_plane_gateway_v1"),
        ("required_abi", "wasi:*"),
        ("required_feature_gates", BASE_GATES),
        ("artifact_path", str(folder / f"{sha}.wasm")),
        ("artifact_sha256", sha),
        ("artifact_size_bytes", len(data)),
        ("manifest_path", str(folder / f"{sha}.manifest.json")),
        ("generated_unix_ms", 1_700_000_000_000),
    ]]


def test_channel_automation_profile_adds_dispatch_gate(tmp_path: Path) -> None:
    report = package_module(WASM_DIR / "component.wasm", state_dir=tmp_path,
                            runtime_profile="channel_automation_wasi", output_dir=tmp_path / "out")
    assert report.module_kind == "component"
    assert report.constraint_profile_id == "channel_automation_runtime_v1"
    assert report.capability_constraints == [*BASE_GATES, "channel_event_dispatch_host_capability"]
    assert Path(report.artifact_path).parent == tmp_path / "out" / "edge-wasm"


def test_packaging_twice_is_idempotent(tmp_path: Path) -> None:
    state = tmp_path / "state"
    clock = FakeClock()
    first = package_module(WASM_DIR / "component.wasm", state_dir=state, clock=clock)
    files = snapshot(state / "wasm-artifacts")
    state_before = (state / "state.json").read_text()
    clock.advance(60_000)
    second = package_module(WASM_DIR / "component.wasm", state_dir=state, clock=clock)
    # as the seed, state_updated is true on every packaging; files and state stay as they were
    assert second.model_dump() == first.model_dump()
    assert second.state_updated is True
    assert snapshot(state / "wasm-artifacts") == files
    assert (state / "state.json").read_text() == state_before


def test_upsert_keeps_other_state_fields_and_entries(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    other_entry = {"blueprint_id": "aaa", "runtime_profile": "wasm_wasi", "note": "keep me"}
    (state / "state.json").write_text(json.dumps({
        "schema_version": 1,
        "processed_case_keys": ["k1"],
        "rollouts": [],
        "health": None,
        "wasm_deliverables": [other_entry],
        "other_tool": {"x": 1},
    }))
    package_module(WASM_DIR / "edge-runtime.wasm", state_dir=state, blueprint_id="zzz")
    package_module(WASM_DIR / "component.wasm", state_dir=state, blueprint_id="zzz")
    package_module(WASM_DIR / "component.wasm", state_dir=state, blueprint_id="zzz",
                   runtime_profile="channel-automation-wasi")
    saved = json.loads((state / "state.json").read_text())
    assert saved["processed_case_keys"] == ["k1"]
    assert saved["other_tool"] == {"x": 1}
    keys = [(d["blueprint_id"], d["runtime_profile"]) for d in saved["wasm_deliverables"]]
    # as the seed: replaced where it stands, new keys appended (no re-sorting)
    assert keys == [("aaa", "wasm_wasi"), ("zzz", "wasm_wasi"),
                    ("zzz", "channel_automation_wasi")]
    assert saved["wasm_deliverables"][0] == other_entry
    component_sha = hashlib.sha256((WASM_DIR / "component.wasm").read_bytes()).hexdigest()
    assert saved["wasm_deliverables"][1]["artifact_sha256"] == component_sha


def test_compliant_looking_module_that_fails_validation_leaves_nothing(tmp_path: Path) -> None:
    # imports are fine (compliant), but the function body returns nothing for an i32 result
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(bytes.fromhex(
        "0061736d01000000" "010801600000600001 7f".replace(" ", "")
        + "020e0106" + b"wasi:a".hex() + "01" + b"f".hex() + "0000"
        + "03020101" + "0a040102000b"
    ))
    state = tmp_path / "state"
    with pytest.raises(WasmModuleError, match="does not validate"):
        package_module(bad, state_dir=state)
    assert not state.exists()


def test_cli_defaults_match_the_library() -> None:
    from tau_ops.cli import wasm as cli_wasm
    from tau_ops.wasm import package, smoke

    assert (cli_wasm.DEFAULT_BLUEPRINT_ID, cli_wasm.DEFAULT_RUNTIME_PROFILE) == (
        package.DEFAULT_BLUEPRINT_ID, package.DEFAULT_RUNTIME_PROFILE)
    assert tuple(sorted(PROFILES)) == cli_wasm.RUNTIME_PROFILES
    assert cli_wasm.DEFAULT_FUEL == smoke.DEFAULT_FUEL
    assert cli_wasm.DEFAULT_MEMORY_MIB * 1024 * 1024 == smoke.DEFAULT_MEMORY_BYTES
    assert cli_wasm.DEFAULT_PROBE_TIMEOUT_S == smoke.DEFAULT_PROBE_TIMEOUT_S


def test_replacing_an_entry_keeps_its_place_among_others(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for blueprint in ("b", "a", "c"):
        package_module(WASM_DIR / "edge-runtime.wasm", state_dir=state, blueprint_id=blueprint)
    package_module(WASM_DIR / "component.wasm", state_dir=state, blueprint_id="a")
    saved = json.loads((state / "state.json").read_text())["wasm_deliverables"]
    component_sha = hashlib.sha256((WASM_DIR / "component.wasm").read_bytes()).hexdigest()
    assert [(d["blueprint_id"], d["artifact_sha256"] == component_sha) for d in saved] == [
        ("b", False), ("a", True), ("c", False)]


def test_blueprint_id_is_trimmed_as_the_seed_does(tmp_path: Path) -> None:
    report = package_module(WASM_DIR / "edge-runtime.wasm", state_dir=tmp_path,
                            blueprint_id=" edge-wasm ")
    folder = tmp_path / "wasm-artifacts" / "edge-wasm"
    assert (report.blueprint_id, Path(report.manifest_path).parent) == ("edge-wasm", folder)
    manifest = json.loads(Path(report.manifest_path).read_text())
    state = json.loads((tmp_path / "state.json").read_text())
    assert (manifest["blueprint_id"], state["wasm_deliverables"][0]["blueprint_id"]) == (
        "edge-wasm", "edge-wasm")
    with pytest.raises(UsageError, match="blueprint id must not be empty"):
        package_module(WASM_DIR / "edge-runtime.wasm", state_dir=tmp_path, blueprint_id="  ")


def test_module_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "module.wasm"
    os.mkfifo(fifo)
    with pytest.raises(WasmModuleError, match=r"not a regular file \(FIFO\)"):
        package_module(fifo, state_dir=tmp_path / "state")
    with pytest.raises(WasmModuleError, match=r"not a regular file \(character device\)"):
        package_module("/dev/zero", state_dir=tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_a_fifo_planted_as_the_artifact_is_refused_not_read(tmp_path: Path) -> None:
    """Inside the state dir a special file is refused (the containment rule), never read."""
    from tau_ops.errors import StateError

    data = (WASM_DIR / "edge-runtime.wasm").read_bytes()
    folder = tmp_path / "wasm-artifacts" / "edge-wasm"
    folder.mkdir(parents=True)
    fifo = folder / f"{hashlib.sha256(data).hexdigest()}.wasm"
    os.mkfifo(fifo)
    with pytest.raises(StateError, match="it is a FIFO"):
        package_module(WASM_DIR / "edge-runtime.wasm", state_dir=tmp_path)
    assert fifo.is_fifo() and not (tmp_path / "state.json").exists()
