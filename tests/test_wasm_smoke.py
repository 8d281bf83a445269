"""The smoke harness runs modules in a bounded sandbox and probes V8."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from builders import TESTDATA

from tau_ops.errors import UsageError, WasmModuleError
from tau_ops.wasm import SandboxPolicy, package_module, smoke_run

WASM_DIR = TESTDATA / "deployment-wasm"
NO_PROBES = {"edge_probes": False}


def test_infinite_loop_is_stopped_by_fuel_not_hung() -> None:
    report = smoke_run(expect_stopped=[WASM_DIR / "infinite-loop.wasm"],
                       policy=SandboxPolicy(fuel=200_000), **NO_PROBES)
    (module,) = report.modules
    assert (module.run.outcome, module.run.fuel_used, module.verdict) == (
        "fuel_exhausted", 200_000, "pass")
    assert (report.status, report.stopped) == ("pass", 1)


def test_runaway_module_fails_a_normal_smoke() -> None:
    report = smoke_run([WASM_DIR / "infinite-loop.wasm"], policy=SandboxPolicy(fuel=100_000),
                       **NO_PROBES)
    assert report.status == "fail"
    assert report.modules[0].detail == "stopped by the sandbox: fuel budget spent"


def test_module_expected_to_be_stopped_fails_when_it_exits() -> None:
    report = smoke_run(expect_stopped=[WASM_DIR / "wasi-p2-core.wasm"], **NO_PROBES)
    assert report.status == "fail"
    assert report.modules[0].detail == "expected the sandbox to stop it, got exited(0)"


def test_preview1_program_runs_with_captured_stdout_and_exit_code() -> None:
    (module,) = smoke_run([WASM_DIR / "wasi-preview1.wasm"], **NO_PROBES).modules
    assert (module.run.label, module.run.entry_point, module.run.stdout) == (
        "exited(0)", "_start", "hello from wasi preview1\n")
    assert module.run.fuel_used > 0


def test_component_runs_wasi_cli_run() -> None:
    (module,) = smoke_run([WASM_DIR / "component.wasm"], **NO_PROBES).modules
    assert (module.kind, module.run.label, module.run.entry_point, module.verdict) == (
        "component", "exited(0)", "wasi:cli/run@0.2.0#run", "pass")


def test_unsatisfied_imports_are_stubbed_as_traps_and_reported() -> None:
    (module,) = smoke_run([WASM_DIR / "unlisted-import.wasm"], **NO_PROBES).modules
    assert module.run.stubbed_imports == ["host_debug.log", "wasi:cli/stdout@0.2.0.get-stdout"]
    assert module.run.label == "exited(0)"


def test_module_without_entry_point_is_instantiated_only() -> None:
    (module,) = smoke_run([WASM_DIR / "edge-runtime.wasm"], **NO_PROBES).modules
    assert (module.run.outcome, module.verdict) == ("no_entry", "pass")


def test_memory_cap_is_enforced(tmp_path: Path) -> None:
    import wasmtime

    big = tmp_path / "mem.wasm"
    big.write_bytes(bytes(wasmtime.wat2wasm('(module (memory 32) (func (export "_start")))')))
    (module,) = smoke_run([big], policy=SandboxPolicy(memory_bytes=1024 * 1024),
                          **NO_PROBES).modules
    assert module.run.outcome == "failed"
    assert module.verdict == "fail"


def test_deliverables_are_verified_before_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    good = package_module(WASM_DIR / "wasi-p2-core.wasm", state_dir=state, blueprint_id="good")
    bad = package_module(WASM_DIR / "component.wasm", state_dir=state, blueprint_id="bad")
    Path(bad.artifact_path).write_bytes(b"\0asm\x01\x00\x00\x00")
    report = smoke_run(state_dir=state, **NO_PROBES)
    by_origin = {m.origin: m for m in report.modules}
    assert by_origin["deliverable:good/wasm_wasi"].verdict == "pass"
    assert by_origin["deliverable:good/wasm_wasi"].path == good.artifact_path
    tampered = by_origin["deliverable:bad/wasm_wasi"]
    assert tampered.verdict == "fail"
    assert "artifact_sha256_mismatch" in tampered.detail
    assert report.status == "fail"


def test_invalid_module_raises_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_text("hello")
    with pytest.raises(WasmModuleError):
        smoke_run([bad], **NO_PROBES)


def test_bad_policy_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        SandboxPolicy(fuel=0)


def test_missing_edge_runtimes_are_explicit_skips() -> None:
    report = smoke_run([WASM_DIR / "edge-runtime.wasm"], which=lambda name: None)
    assert [(p.name, p.status, p.detail) for p in report.probes] == [
        ("node", "skip", "node is not installed"),
        ("deno", "skip", "deno is not installed"),
        ("wrangler", "skip", "wrangler is not installed"),
    ]
    assert report.status == "pass"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_instantiates_core_modules_with_stub_imports() -> None:
    only_node = {"node": shutil.which("node")}
    report = smoke_run(
        [WASM_DIR / "wasi-p2-core.wasm", WASM_DIR / "component.wasm"],
        which=lambda name: only_node.get(name),
    )
    node = report.probes[0]
    assert (node.name, node.status) == ("node", "pass")
    by_kind = {m.kind: m.probes for m in report.modules}
    assert by_kind == {
        "core": {"node": "pass"},
        "component": {"node": "skip(component: V8 runs core modules only)"},
    }


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_probe_failure_fails_the_module(tmp_path: Path) -> None:
    import wasmtime

    # a start function that traps during instantiation fails in V8 too
    trap = tmp_path / "trap.wasm"
    trap.write_bytes(bytes(wasmtime.wat2wasm("(module (func $s unreachable) (start $s))")))
    only_node = {"node": shutil.which("node")}
    report = smoke_run([trap], which=lambda name: only_node.get(name))
    (module,) = report.modules
    assert module.run.outcome == "trapped"
    assert module.probes["node"].startswith("fail(")
    assert (report.probes[0].status, report.status) == ("fail", "fail")
