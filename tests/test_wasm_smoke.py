"""The smoke harness runs modules in a bounded sandbox and probes V8."""

from __future__ import annotations

import shutil
import time
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

    # memory64: wasmtime validates and runs it; Node 20's V8 refuses to compile it
    mem64 = tmp_path / "mem64.wasm"
    mem64.write_bytes(bytes(wasmtime.wat2wasm("(module (memory i64 1))")))
    only_node = {"node": shutil.which("node")}
    report = smoke_run([mem64], which=lambda name: only_node.get(name))
    (module,) = report.modules
    assert module.run.outcome == "no_entry"
    assert module.probes["node"].startswith("fail(WebAssembly.compile(): ")
    assert (report.probes[0].status, report.status) == ("fail", "fail")


def test_node_probe_compiles_only_and_never_runs_a_start_function(tmp_path: Path) -> None:
    import wasmtime

    # a start function that would allocate ~1 GB in V8 if it ran (no fuel, no cap there)
    hog = tmp_path / "hog.wasm"
    hog.write_bytes(bytes(wasmtime.wat2wasm(
        "(module (memory 1) (func $s (drop (memory.grow (i32.const 15000))) unreachable)"
        " (start $s))")))
    only_node = {"node": shutil.which("node")}
    report = smoke_run([hog], which=lambda name: only_node.get(name))
    (module,) = report.modules
    assert module.probes["node"] == "pass"
    assert report.probes[0].detail == ("V8 compiled 1 core module(s) and resolved stub imports "
                                       "(no code run)")
    assert (module.run.outcome, module.verdict) == ("trapped", "fail")  # wasmtime ran it


def _module(tmp_path: Path, name: str, text: str) -> Path:
    import wasmtime

    path = tmp_path / name
    path.write_bytes(bytes(wasmtime.wat2wasm(text)))
    return path


def _grower(tmp_path: Path, elements: int) -> Path:
    # exits 3 when table.grow is refused, 0 when it was granted
    return _module(tmp_path, f"grow-{elements}.wasm", f"""(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (table 0 funcref)
      (func (export "_start")
        (if (i32.eq (table.grow (ref.null func) (i32.const {elements})) (i32.const -1))
          (then (call $exit (i32.const 3))))
        (call $exit (i32.const 0))))""")


def test_table_growth_is_capped_like_memory(tmp_path: Path) -> None:
    huge, over, under = (_grower(tmp_path, n) for n in (300_000_000, 2_000_000, 500_000))
    report = smoke_run([huge, over, under], **NO_PROBES)  # default cap: 1 M elements (8 MB)
    assert [m.run.label for m in report.modules] == ["exited(3)", "exited(3)", "exited(0)"]
    (raised,) = smoke_run([over], policy=SandboxPolicy(table_elements=4_000_000),
                          **NO_PROBES).modules
    assert raised.run.label == "exited(0)"  # the cap is what refused it


def test_captured_output_keeps_the_head_and_counts_the_rest(tmp_path: Path) -> None:
    # 32 writes of a 64 KiB buffer (2 MiB); only the first 4096 bytes are kept
    flood = _module(tmp_path, "flood.wasm", """(module
      (import "wasi_snapshot_preview1" "fd_write"
        (func $write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      (func (export "_start") (local $i i32)
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (memory.fill (i32.const 65536) (i32.const 65) (i32.const 65536))
        (loop $again
          (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 32))))))""")
    (module,) = smoke_run([flood], policy=SandboxPolicy(fuel=100_000), **NO_PROBES).modules
    run = module.run
    assert (run.label, run.stdout_bytes, run.stdout_truncated, run.stdout) == (
        "exited(0)", 32 * 65536, True, "A" * 4096)


def test_module_sleeping_in_wasi_is_stopped_by_the_deadline(tmp_path: Path) -> None:
    sleeper = _module(tmp_path, "sleep.wasm", """(module
      (import "wasi_snapshot_preview1" "poll_oneoff"
        (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 3600000000000))
        (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))))""")
    started = time.monotonic()
    report = smoke_run(expect_stopped=[sleeper], policy=SandboxPolicy(fuel=1000, deadline_s=1),
                       **NO_PROBES)
    assert time.monotonic() - started < 30
    (module,) = report.modules
    assert (module.run.outcome, module.verdict, report.stopped) == (
        "deadline_exceeded", "pass", 1)
    assert module.run.detail == "stopped by the sandbox: still in a host call 2s after starting"


def test_compute_loop_is_stopped_by_the_deadline_before_its_fuel(tmp_path: Path) -> None:
    report = smoke_run([WASM_DIR / "infinite-loop.wasm"],
                       policy=SandboxPolicy(fuel=10**15, deadline_s=0.5), **NO_PROBES)
    (module,) = report.modules
    assert (module.run.outcome, module.run.detail) == (
        "deadline_exceeded", "stopped by the sandbox: wall-clock deadline of 0.5s passed")
    assert report.status == "fail"
