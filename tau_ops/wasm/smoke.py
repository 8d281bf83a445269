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

from pydantic import BaseModel, Field

from tau_ops.errors import ManifestError, UsageError
from tau_ops.state import deliverable_path, read_state
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

    Raises
    ------
    UsageError
        A limit out of range: fuel below 1, memory below 65536 bytes (one
        WebAssembly page), a negative table or output cap, or a deadline
        outside (0, 86400] seconds.

    Examples
    --------
    >>> SandboxPolicy(memory_bytes=16 * MIB).fuel
    50000000
    >>> SandboxPolicy(fuel=0)
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: fuel must be at least 1, got 0
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
    """What happened when the sandbox ran one module (a ``ModuleSmoke``'s ``run``)."""

    outcome: Literal["exited", "no_entry", "fuel_exhausted", "deadline_exceeded", "trapped",
                     "failed"] = Field(
        description="exited (the entry point returned or called exit), no_entry (instantiated, "
        "nothing to run), fuel_exhausted/deadline_exceeded (stopped by the sandbox), trapped, "
        "or failed (did not compile or instantiate)")
    exit_code: int | None = Field(default=None, description="exit status when outcome is exited")
    entry_point: str = Field(
        default="", description="what was run: _start (core) or wasi:cli/run@...#run (component)")
    compile_ms: float = Field(default=0.0, description="time to compile the module (ms)")
    wall_ms: float = Field(default=0.0, description="wall-clock time of the run (ms)")
    fuel_used: int = Field(default=0, description="fuel units consumed (wasmtime fuel)")
    stdout: str = Field(default="", description="the start of what the module wrote to stdout")
    stdout_bytes: int = Field(default=0, description="bytes written to stdout in all")
    stdout_truncated: bool = Field(default=False, description="stdout was longer than kept")
    stderr: str = Field(default="", description="the start of what the module wrote to stderr")
    stderr_bytes: int = Field(default=0, description="bytes written to stderr in all")
    stderr_truncated: bool = Field(default=False, description="stderr was longer than kept")
    stubbed_imports: list[str] = Field(
        default=[], description="module.name of imports defined as traps (neither WASI nor "
        "supplied)")
    detail: str = Field(default="", description="one line on why it trapped, failed or stopped")

    @property
    def label(self) -> str:
        """``exited(0)``, ``fuel_exhausted`` ... as printed on the module line."""
        return f"exited({self.exit_code})" if self.outcome == "exited" else self.outcome


class ModuleSmoke(BaseModel):
    """One module's smoke result: sandbox run, edge probes and its verdict.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm import package_module
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     packaged = package_module(module, state_dir=Path(tmp) / "state")
    ...     Path(packaged.artifact_path).unlink()  # the deliverable's artifact went missing
    ...     row = smoke_run(state_dir=Path(tmp) / "state", edge_probes=False).modules[0]
    >>> row.origin, row.verdict, row.run.outcome
    ('deliverable:edge-wasm/wasm_wasi', 'fail', 'failed')
    >>> row.detail
    'manifest ... does not verify: reason_codes=artifact_missing'
    """

    path: str = Field(description="the module file run (a deliverable's artifact, or as given)")
    origin: str = Field(
        description="`module` (given) or `deliverable:<blueprint_id>/<runtime_profile>`")
    kind: str = Field(description="core or component ('' when it could not be read)")
    import_modules: list[str] = Field(description="sorted, distinct import module names")
    expect: Literal["clean_exit", "stopped"] = Field(
        description="clean_exit, or stopped for a runaway canary the sandbox must stop")
    run: RunResult = Field(description="what the sandbox run did")
    probes: dict[str, str] = Field(
        description="edge runtime -> `pass`, `fail(<detail>)` or `skip(<why>)` for this module")
    verdict: Verdict = Field(description="pass when the module met its expectation")
    detail: str = Field(default="", description="why the verdict is fail (one line)")


class ProbeReport(BaseModel):
    """One edge runtime probe across all modules."""

    name: str = Field(description="node, deno or wrangler")
    status: ProbeStatus = Field(description="pass, fail, or skip (not installed, nothing to run)")
    detail: str = Field(description="one line on what was checked or why it failed")


class SmokeReport(BaseModel):
    """The whole smoke run; ``status`` is pass when every module met its expectation.

    Returned by :func:`smoke_run`; printed by ``tau-ops wasm-smoke --json``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # a state dir with no deliverable yet
    ...     report = smoke_run(state_dir=tmp, edge_probes=False)
    >>> report.status, report.modules, report.memory_limit_bytes
    ('pass', [], 67108864)
    """

    status: Verdict = Field(description="pass when every module passed and no probe failed")
    modules: list[ModuleSmoke] = Field(description="one row per module, in the order run")
    probes: list[ProbeReport] = Field(description="edge probes: node, deno, wrangler")
    passed: int = Field(description="modules whose verdict is pass")
    failed: int = Field(description="modules whose verdict is fail")
    stopped: int = Field(description="modules the sandbox stopped (fuel or deadline)")
    fuel_limit: int = Field(description="fuel budget of each run (wasmtime fuel units)")
    memory_limit_bytes: int = Field(description="cap on each linear memory, in bytes")


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
        manifest = deliverable_path(state_dir, str(entry.get("manifest_path", "")))
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

    Each module runs in a child process under ``policy`` (:class:`SandboxPolicy`:
    no preopened directory, no network, no environment, fuel and memory caps,
    a wall-clock deadline); each core module is then instantiated by V8 (Node,
    Deno) with stub imports when ``edge_probes`` is on.

    Parameters
    ----------
    modules : sequence of Path or str, default ()
        Modules that must run cleanly: return from their entry point (exit
        status 0) or have none.
    state_dir : Path or str, optional
        A state dir whose ``wasm_deliverables`` are smoke-tested (each
        manifest re-verified first; one that does not verify fails its row).
    expect_stopped : sequence of Path or str, default ()
        Modules that pass only when the sandbox stops them (a runaway canary
        that proves the fuel and deadline limits work).
    include_deliverables : bool, optional
        Smoke-test the deliverables of ``state_dir``; default (None): only
        when no module is given.
    policy : SandboxPolicy, optional
        Sandbox limits; default ``SandboxPolicy()`` (50,000,000 fuel, 64 MiB
        memory, 10 s deadline).
    edge_probes : bool, default True
        Run the node/deno/wrangler probes (skipped when not installed).
    probe_timeout_s : float, default 60.0
        Deadline of each probe process, in seconds.
    which : callable, default shutil.which
        Finds an executable by name (tests inject a fake).

    Returns
    -------
    SmokeReport
        One row per module, the probes, and ``status``.

    Raises
    ------
    WasmModuleError
        A given module (or a verified deliverable's artifact) cannot be read
        or is not valid WebAssembly (exit 2).
    StateError
        ``state.json`` of ``state_dir`` cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     report = smoke_run([module], edge_probes=False)
    >>> report.status, report.passed, report.modules[0].run.stubbed_imports
    ('pass', 1, ['wasi:cli/environment@0.2.0.f'])
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
