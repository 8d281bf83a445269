"""The smoke harness: run modules in a capability-limited wasmtime sandbox, then probe edges.

The sandbox follows the deliverable's capability constraints: no preopened
directory unless the caller grants one, no socket address allowed, no
inherited environment or arguments, stdin empty, stdout/stderr captured, a
fuel budget (so a module that never returns is stopped, not waited for) and a
memory cap. Edge probes then instantiate each core module through V8 (Node,
and Deno when installed) with stub imports; wrangler is reported when
installed and skipped explicitly otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import wasmtime
import wasmtime.component as wc
from pydantic import BaseModel

from tau_ops.errors import ManifestError, UsageError
from tau_ops.state import read_state
from tau_ops.wasm.inspect import load_verified_manifest
from tau_ops.wasm.parse import ParsedModule, parse_file

MIB = 1024 * 1024
DEFAULT_FUEL = 50_000_000
DEFAULT_MEMORY_BYTES = 64 * MIB
DEFAULT_PROBE_TIMEOUT_S = 60.0
PROBE_SCRIPT = Path(__file__).with_name("edge_probe.mjs")
OUTPUT_KEEP_CHARS = 400

Which = Callable[[str], "str | None"]
Verdict = Literal["pass", "fail"]
ProbeStatus = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits of one sandboxed run; directories are mounted only when listed here."""

    fuel: int = DEFAULT_FUEL
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    preopened_dirs: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.fuel < 1:
            raise UsageError(f"fuel must be at least 1, got {self.fuel}")
        if self.memory_bytes < 65536:
            raise UsageError(f"memory limit must be at least 65536 bytes, got {self.memory_bytes}")


class RunResult(BaseModel):
    """What happened when the sandbox ran one module."""

    outcome: Literal["exited", "no_entry", "fuel_exhausted", "trapped", "failed"]
    exit_code: int | None = None
    entry_point: str = ""
    compile_ms: float = 0.0
    wall_ms: float = 0.0
    fuel_used: int = 0
    stdout: str = ""
    stderr: str = ""
    stubbed_imports: list[str] = []
    detail: str = ""

    @property
    def label(self) -> str:
        """``exited(0)``, ``fuel_exhausted`` ... as printed on the module line."""
        return f"exited({self.exit_code})" if self.outcome == "exited" else self.outcome


class ModuleSmoke(BaseModel):
    """One module's smoke result: sandbox run, edge probes and its verdict."""

    path: str
    origin: str
    kind: str
    import_modules: list[str]
    expect: Literal["clean_exit", "stopped"]
    run: RunResult
    probes: dict[str, str]
    verdict: Verdict
    detail: str = ""


class ProbeReport(BaseModel):
    """One edge runtime probe across all modules."""

    name: str
    status: ProbeStatus
    detail: str


class SmokeReport(BaseModel):
    """The whole smoke run; ``status`` is pass when every module met its expectation."""

    status: Verdict
    modules: list[ModuleSmoke]
    probes: list[ProbeReport]
    passed: int
    failed: int
    stopped: int
    fuel_limit: int
    memory_limit_bytes: int


@dataclass(frozen=True)
class _Target:
    path: Path
    origin: str
    expect: Literal["clean_exit", "stopped"]
    problem: str = ""


def _text(path: Path) -> str:
    try:
        return path.read_bytes()[:OUTPUT_KEEP_CHARS].decode("utf-8", "replace")
    except OSError:
        return ""


def _sandbox_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


def _wasi(policy: SandboxPolicy, name: str, out: Path, err: Path) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [name]  # nothing inherited: no host argv, no environment
    wasi.stdout_file = str(out)
    wasi.stderr_file = str(err)
    for folder in policy.preopened_dirs:
        wasi.preopen_dir(str(folder), "/" + folder.name, False)
    return wasi


def _ending(exc: Exception) -> dict[str, object]:
    """How a run that raised ``exc`` ended, as RunResult fields."""
    if isinstance(exc, wasmtime.ExitTrap):
        return {"outcome": "exited", "exit_code": exc.code}
    if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
        return {"outcome": "fuel_exhausted", "detail": "stopped by the sandbox: fuel budget spent"}
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return {"outcome": "trapped" if isinstance(exc, wasmtime.Trap) else "failed",
            "detail": message}


def run_in_sandbox(data: bytes, kind: str, *, name: str, policy: SandboxPolicy) -> RunResult:
    """Compile ``data`` with wasmtime and run its entry point under ``policy``."""
    engine = _sandbox_engine()
    with tempfile.TemporaryDirectory(prefix="tau-wasm-smoke-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        store = wasmtime.Store(engine)
        store.set_fuel(policy.fuel)
        store.set_limits(memory_size=policy.memory_bytes)
        store.set_wasi(_wasi(policy, name, out, err))
        started = time.perf_counter()
        try:
            if kind == "component":
                result = _run_component(engine, store, data)
            else:
                result = _run_core(engine, store, data)
        except _Partial as partial:
            result = partial.result.model_copy(update=_ending(partial.cause))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:  # did not compile
            result = RunResult(**_ending(exc))  # type: ignore[arg-type]
        wall_ms = (time.perf_counter() - started) * 1000
        return result.model_copy(update={
            "wall_ms": round(wall_ms - result.compile_ms, 3),
            "fuel_used": policy.fuel - store.get_fuel(),
            "stdout": _text(out),
            "stderr": _text(err),
        })


class _Partial(Exception):
    """A run failed after compiling: carries what was learned so far."""

    def __init__(self, result: RunResult, cause: Exception) -> None:
        super().__init__(str(cause))
        self.result = result
        self.cause = cause


def _run_core(engine: wasmtime.Engine, store: wasmtime.Store, data: bytes) -> RunResult:
    t0 = time.perf_counter()
    module = wasmtime.Module(engine, data)
    compile_ms = round((time.perf_counter() - t0) * 1000, 3)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    stubbed = sorted({f"{i.module}.{i.name}" for i in module.imports
                      if i.module != "wasi_snapshot_preview1"})
    linker.define_unknown_imports_as_traps(module)
    result = RunResult(outcome="no_entry", compile_ms=compile_ms, stubbed_imports=stubbed)
    try:
        instance = linker.instantiate(store, module)
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            return result
        result = result.model_copy(update={"entry_point": "_start"})
        start(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise _Partial(result, exc) from exc
    return result.model_copy(update={"outcome": "exited", "exit_code": 0})


def _run_component(engine: wasmtime.Engine, store: wasmtime.Store, data: bytes) -> RunResult:
    t0 = time.perf_counter()
    component = wc.Component(engine, data)
    compile_ms = round((time.perf_counter() - t0) * 1000, 3)
    linker = wc.Linker(engine)
    linker.add_wasip2()
    linker.define_unknown_imports_as_traps(component)
    result = RunResult(outcome="no_entry", compile_ms=compile_ms)
    run_names = [n for n in component.type.exports(engine) if n.startswith("wasi:cli/run@")]
    try:
        instance = linker.instantiate(store, component)
        if not run_names:
            return result
        iface = instance.get_export_index(store, run_names[0])
        index = instance.get_export_index(store, "run", iface) if iface else None
        func = instance.get_func(store, index) if index else None
        if func is None:
            return result
        result = result.model_copy(update={"entry_point": f"{run_names[0]}#run"})
        value = func(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise _Partial(result, exc) from exc
    ok = getattr(value, "tag", "ok") == "ok"
    return result.model_copy(update={"outcome": "exited", "exit_code": 0 if ok else 1})


def _probe_run(argv: list[str], timeout: float) -> tuple[dict[str, dict[str, str]], str]:
    """Run a probe; (per-path results, failure text or '')."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {}, f"timed out after {timeout:g}s"
    except OSError as exc:
        return {}, f"could not start: {exc.strerror}"
    results: dict[str, dict[str, str]] = {}
    for line in done.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            results[item["path"]] = {k: str(v) for k, v in item.items()}
    if done.returncode != 0 and not results:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {}, f"exit status {done.returncode}: {tail}"
    return results, ""


def _edge_probe(
    name: str, argv_prefix: list[str] | None, core_paths: list[str], timeout: float,
    per_module: dict[str, dict[str, str]],
) -> ProbeReport:
    if argv_prefix is None:
        return ProbeReport(name=name, status="skip", detail=f"{name} is not installed")
    if not core_paths:
        return ProbeReport(name=name, status="skip", detail="no core module to instantiate")
    results, failure = _probe_run([*argv_prefix, str(PROBE_SCRIPT), *core_paths], timeout)
    for path in core_paths:
        item = results.get(path)
        status = item.get("status", "fail") if item else "fail"
        detail = item.get("detail", "") if item else (failure or "no result")
        label = "pass" if status == "pass" else f"{status}({detail})"
        per_module.setdefault(path, {})[name] = label
    failed = [p for p in core_paths if per_module[p][name] != "pass"]
    if failed:
        return ProbeReport(name=name, status="fail",
                           detail=failure or f"{len(failed)} of {len(core_paths)} module(s) failed")
    return ProbeReport(name=name, status="pass",
                       detail=f"V8 instantiated {len(core_paths)} core module(s) with stub imports")


def _wrangler_probe(which: Which, timeout: float) -> ProbeReport:
    exe = which("wrangler")
    if exe is None:
        return ProbeReport(name="wrangler", status="skip", detail="wrangler is not installed")
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ProbeReport(name="wrangler", status="fail", detail=f"wrangler did not run: {exc}")
    version = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0:
        return ProbeReport(name="wrangler", status="fail", detail="wrangler --version failed")
    return ProbeReport(name="wrangler", status="pass",
                       detail=f"wrangler {version} runs; Workers' V8 is exercised by the "
                       "node probe")


def _targets(
    modules: Sequence[Path], expect_stopped: Sequence[Path], state_dir: Path | None,
    include_deliverables: bool | None,
) -> list[_Target]:
    targets = [_Target(Path(p), "module", "clean_exit") for p in modules]
    targets += [_Target(Path(p), "module", "stopped") for p in expect_stopped]
    if include_deliverables is None:
        include_deliverables = not targets
    if not include_deliverables or state_dir is None:
        return targets
    state = read_state(state_dir)
    for entry in state.wasm_deliverables if state else []:
        origin = f"deliverable:{entry.get('blueprint_id')}/{entry.get('runtime_profile')}"
        manifest = Path(str(entry.get("manifest_path", "")))
        try:
            verified = load_verified_manifest(manifest)
        except ManifestError as exc:
            targets.append(_Target(manifest, origin, "clean_exit", problem=exc.message))
            continue
        targets.append(_Target(verified.artifact_file, origin, "clean_exit"))
    return targets


def _verdict(target: _Target, run: RunResult, probes: dict[str, str]) -> tuple[Verdict, str]:
    if target.expect == "stopped":
        if run.outcome == "fuel_exhausted":
            return "pass", "stopped by the sandbox as expected"
        return "fail", f"expected the sandbox to stop it, got {run.label}"
    if run.outcome != "no_entry" and run.label != "exited(0)":
        return "fail", run.detail or f"entry point ended with {run.label}"
    bad = [f"{name}={status}" for name, status in probes.items() if status != "pass"
           and not status.startswith("skip")]
    if bad:
        return "fail", "edge probe failed: " + ", ".join(bad)
    return "pass", ""


def smoke_run(
    modules: Sequence[Path | str] = (),
    *,
    state_dir: Path | str | None = None,
    expect_stopped: Sequence[Path | str] = (),
    include_deliverables: bool | None = None,
    policy: SandboxPolicy | None = None,
    edge_probes: bool = True,
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    which: Which = shutil.which,
) -> SmokeReport:
    """Smoke-test modules and/or the deliverables packaged in ``state_dir``.

    Deliverables (manifests re-verified first) are included when
    ``include_deliverables`` is True, or when it is None and no module is given.

    ``expect_stopped`` modules pass only when the sandbox stops them (a
    runaway canary that proves the fuel limit works). A module that is not
    valid WebAssembly raises :class:`~tau_ops.errors.WasmModuleError`.
    """
    policy = policy or SandboxPolicy()
    targets = _targets([Path(m) for m in modules], [Path(m) for m in expect_stopped],
                       Path(state_dir) if state_dir is not None else None,
                       include_deliverables)
    parsed: list[tuple[_Target, ParsedModule | None, bytes]] = []
    for target in targets:
        if target.problem:
            parsed.append((target, None, b""))
            continue
        data, found = parse_file(target.path)
        parsed.append((target, found, data))
    per_module: dict[str, dict[str, str]] = {}
    core_paths = sorted({str(t.path) for t, m, _ in parsed if m is not None and m.kind == "core"})
    probes: list[ProbeReport] = []
    if edge_probes:
        node, deno = which("node"), which("deno")
        probes.append(_edge_probe("node", [node] if node else None, core_paths,
                                  probe_timeout_s, per_module))
        probes.append(_edge_probe("deno", [deno, "run", "--allow-read"] if deno else None,
                                  core_paths, probe_timeout_s, per_module))
        probes.append(_wrangler_probe(which, probe_timeout_s))
    results: list[ModuleSmoke] = []
    for target, module, data in parsed:
        if module is None:
            run = RunResult(outcome="failed", detail=target.problem)
            results.append(ModuleSmoke(
                path=str(target.path), origin=target.origin, kind="", import_modules=[],
                expect=target.expect, run=run, probes={}, verdict="fail", detail=target.problem,
            ))
            continue
        run = run_in_sandbox(data, module.kind, name=target.path.name, policy=policy)
        module_probes = dict(per_module.get(str(target.path), {}))
        if module.kind == "component":
            for probe in probes:
                if probe.name != "wrangler" and probe.status != "skip":
                    module_probes[probe.name] = "skip(component: V8 runs core modules only)"
        verdict, detail = _verdict(target, run, module_probes)
        results.append(ModuleSmoke(
            path=str(target.path), origin=target.origin, kind=module.kind,
            import_modules=list(module.import_modules), expect=target.expect, run=run,
            probes=module_probes, verdict=verdict, detail=detail,
        ))
    passed = sum(1 for r in results if r.verdict == "pass")
    failed = len(results) - passed
    probe_failed = any(p.status == "fail" for p in probes)
    return SmokeReport(
        status="pass" if failed == 0 and not probe_failed else "fail",
        modules=results,
        probes=probes,
        passed=passed,
        failed=failed,
        stopped=sum(1 for r in results if r.run.outcome == "fuel_exhausted"),
        fuel_limit=policy.fuel,
        memory_limit_bytes=policy.memory_bytes,
    )
