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
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from tau_ops.errors import ManifestError, UsageError
from tau_ops.state import read_state
from tau_ops.wasm.inspect import load_verified_manifest
from tau_ops.wasm.parse import ParsedModule, parse_file

MIB = 1024 * 1024
DEFAULT_FUEL = 50_000_000
DEFAULT_MEMORY_BYTES = 64 * MIB
DEFAULT_PROBE_TIMEOUT_S = 60.0
DEFAULT_TABLE_ELEMENTS = 1_000_000  # 8 MB of table slots (8 bytes each)
DEFAULT_DEADLINE_S = 10.0
DEFAULT_OUTPUT_KEEP_BYTES = 4096
CHILD_STARTUP_S = 30.0  # backstop on top of the deadline: interpreter start + compile
PROBE_SCRIPT = Path(__file__).with_name("edge_probe.mjs")
PROBE_HEAP_MIB = 256

STOPPED_OUTCOMES = frozenset({"fuel_exhausted", "deadline_exceeded"})

Which = Callable[[str], "str | None"]
Verdict = Literal["pass", "fail"]
ProbeStatus = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits of one sandboxed run; directories are mounted only when listed here.

    Attributes
    ----------
    fuel : int
        Instruction budget (wasmtime fuel units).
    memory_bytes : int
        Cap on each linear memory, in bytes.
    table_elements : int
        Cap on table elements (8 bytes each), so tables cannot outgrow the memory cap.
    deadline_s : float
        Wall-clock deadline of the run, in seconds (epoch interruption, plus a
        watchdog for blocking host calls such as a WASI sleep).
    output_keep_bytes : int
        Bytes of stdout and of stderr kept; the rest is counted, not stored.
    preopened_dirs : tuple of Path
        Directories mounted read-only.
    """

    fuel: int = DEFAULT_FUEL
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    preopened_dirs: tuple[Path, ...] = field(default=())
    table_elements: int = DEFAULT_TABLE_ELEMENTS
    deadline_s: float = DEFAULT_DEADLINE_S
    output_keep_bytes: int = DEFAULT_OUTPUT_KEEP_BYTES

    def __post_init__(self) -> None:
        if self.fuel < 1:
            raise UsageError(f"fuel must be at least 1, got {self.fuel}")
        if self.memory_bytes < 65536:
            raise UsageError(f"memory limit must be at least 65536 bytes, got {self.memory_bytes}")
        if self.table_elements < 0:
            raise UsageError(f"table element limit must be >= 0, got {self.table_elements}")
        if not 0 < self.deadline_s <= 86_400:
            raise UsageError(f"deadline must be in (0, 86400] seconds, got {self.deadline_s}")
        if self.output_keep_bytes < 0:
            raise UsageError(f"output cap must be >= 0 bytes, got {self.output_keep_bytes}")


class RunResult(BaseModel):
    """What happened when the sandbox ran one module."""

    outcome: Literal["exited", "no_entry", "fuel_exhausted", "deadline_exceeded", "trapped",
                     "failed"]
    exit_code: int | None = None
    entry_point: str = ""
    compile_ms: float = 0.0
    wall_ms: float = 0.0
    fuel_used: int = 0
    stdout: str = ""
    stdout_bytes: int = 0
    stdout_truncated: bool = False
    stderr: str = ""
    stderr_bytes: int = 0
    stderr_truncated: bool = False
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


def _policy_json(policy: SandboxPolicy) -> str:
    return json.dumps({
        "fuel": policy.fuel, "memory_bytes": policy.memory_bytes,
        "table_elements": policy.table_elements, "deadline_s": policy.deadline_s,
        "output_keep_bytes": policy.output_keep_bytes,
        "preopened_dirs": [str(folder) for folder in policy.preopened_dirs],
    })


def run_in_sandbox(data: bytes, kind: str, *, name: str, policy: SandboxPolicy) -> RunResult:
    """Run ``data`` under ``policy`` in a child process (:mod:`tau_ops.wasm.sandbox`).

    Parameters
    ----------
    data : bytes
        A module or component that already validated.
    kind : {"core", "component"}
    name : str
        The program name the module sees as ``argv[0]``.
    policy : SandboxPolicy
        Fuel, memory bytes, table elements, wall-clock deadline (s), output cap (bytes).

    Returns
    -------
    RunResult
        ``deadline_exceeded`` when the deadline passed (inside wasm or in a
        blocking host call); ``failed`` when the child itself could not report.
    """
    with tempfile.TemporaryDirectory(prefix="tau-wasm-smoke-") as tmp:
        module = Path(tmp) / "module.wasm"
        module.write_bytes(data)
        argv = [sys.executable, "-m", "tau_ops.wasm.sandbox", str(module), kind, name,
                _policy_json(policy)]
        backstop = policy.deadline_s + CHILD_STARTUP_S
        try:
            done = subprocess.run(argv, capture_output=True, timeout=backstop,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return RunResult(outcome="deadline_exceeded",
                             detail=f"stopped by the sandbox: the run was killed after "
                                    f"{backstop:g}s")
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    try:
        fields = json.loads(lines[0]) if lines else None
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        tail = (done.stderr.decode("utf-8", "replace").strip().splitlines()
                or [f"exit status {done.returncode}"])[-1]
        return RunResult(outcome="failed", detail=f"sandbox process failed: {tail}")
    return RunResult.model_validate(fields)


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
                       detail=f"V8 compiled {len(core_paths)} core module(s) and resolved "
                       "stub imports (no code run)")


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
        if run.outcome in STOPPED_OUTCOMES:
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
        probes.append(_edge_probe("node",
                                  [node, f"--max-old-space-size={PROBE_HEAP_MIB}"]
                                  if node else None, core_paths,
                                  probe_timeout_s, per_module))
        probes.append(_edge_probe("deno",
                                  [deno, "run", "--allow-read",
                                   f"--v8-flags=--max-old-space-size={PROBE_HEAP_MIB}"]
                                  if deno else None,
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
        stopped=sum(1 for r in results if r.run.outcome in STOPPED_OUTCOMES),
        fuel_limit=policy.fuel,
        memory_limit_bytes=policy.memory_bytes,
    )
