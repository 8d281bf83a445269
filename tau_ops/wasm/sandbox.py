"""One sandboxed run of a module, in a child process the parent can always outlive.

The parent (:func:`tau_ops.wasm.smoke.run_in_sandbox`) starts
``python -m tau_ops.wasm.sandbox MODULE KIND NAME POLICY_JSON`` and reads one
JSON object from its stdout. Inside, wasmtime runs the module with:

- fuel (instructions) and an epoch deadline (wall clock, checked by compiled
  code), so a compute loop is stopped either way;
- store limits on linear memory bytes *and* table elements (a ``table.grow``
  of 300 M elements is refused, not 2.4 GB allocated), and on the number of
  instances, tables and memories;
- stdout/stderr captured in memory up to a byte cap: the head is kept, the
  total is counted and the result says it was truncated (a module writing
  1 GiB costs a copy per write, never 1 GiB of storage);
- a watchdog: when the run is still inside a host call (WASI ``poll_oneoff``
  sleeping, which neither fuel nor epochs interrupt) a second after the
  deadline, the child reports ``deadline_exceeded`` and exits at once.

Only the standard library and wasmtime are imported here, to start fast.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

WATCHDOG_GRACE_S = 1.0


class Capture:
    """A stdout/stderr sink that keeps the first ``keep`` bytes and counts the rest."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.head = bytearray()
        self.total = 0

    def __call__(self, data: bytes) -> None:
        self.total += len(data)
        room = self.keep - len(self.head)
        if room > 0:
            self.head += data[:room]

    def fields(self, prefix: str) -> dict[str, Any]:
        """``stdout``, ``stdout_bytes``, ``stdout_truncated`` (or stderr_...)."""
        return {prefix: self.head.decode("utf-8", "replace"),
                f"{prefix}_bytes": self.total,
                f"{prefix}_truncated": self.total > len(self.head)}


class _Partial(Exception):
    def __init__(self, result: dict[str, Any], cause: Exception) -> None:
        super().__init__(str(cause))
        self.result = result
        self.cause = cause


def _ending(exc: Exception, deadline_s: float) -> dict[str, Any]:
    if isinstance(exc, wasmtime.ExitTrap):
        return {"outcome": "exited", "exit_code": exc.code}
    if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
        return {"outcome": "fuel_exhausted", "detail": "stopped by the sandbox: fuel budget spent"}
    if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT:
        return {"outcome": "deadline_exceeded",
                "detail": f"stopped by the sandbox: wall-clock deadline of {deadline_s:g}s passed"}
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return {"outcome": "trapped" if isinstance(exc, wasmtime.Trap) else "failed",
            "detail": message}


def _run_core(engine: wasmtime.Engine, store: wasmtime.Store, data: bytes,
              arm: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    module = wasmtime.Module(engine, data)
    result: dict[str, Any] = {"outcome": "no_entry",
                              "compile_ms": round((time.perf_counter() - t0) * 1000, 3)}
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    result["stubbed_imports"] = sorted({f"{i.module}.{i.name}" for i in module.imports
                                        if i.module != "wasi_snapshot_preview1"})
    linker.define_unknown_imports_as_traps(module)
    arm()
    try:
        instance = linker.instantiate(store, module)  # runs a start function, if any
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            return result
        result["entry_point"] = "_start"
        start(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise _Partial(result, exc) from exc
    return {**result, "outcome": "exited", "exit_code": 0}


def _run_component(engine: wasmtime.Engine, store: wasmtime.Store, data: bytes,
                   arm: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    component = wc.Component(engine, data)
    result: dict[str, Any] = {"outcome": "no_entry",
                              "compile_ms": round((time.perf_counter() - t0) * 1000, 3)}
    linker = wc.Linker(engine)
    linker.add_wasip2()
    linker.define_unknown_imports_as_traps(component)
    run_names = [n for n in component.type.exports(engine) if n.startswith("wasi:cli/run@")]
    arm()
    try:
        instance = linker.instantiate(store, component)
        if not run_names:
            return result
        iface = instance.get_export_index(store, run_names[0])
        index = instance.get_export_index(store, "run", iface) if iface else None
        func = instance.get_func(store, index) if index else None
        if func is None:
            return result
        result["entry_point"] = f"{run_names[0]}#run"
        value = func(store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise _Partial(result, exc) from exc
    ok = getattr(value, "tag", "ok") == "ok"
    return {**result, "outcome": "exited", "exit_code": 0 if ok else 1}


def run(data: bytes, kind: str, name: str, policy: dict[str, Any],
        emit: Any = None) -> dict[str, Any]:
    """Run ``data`` under ``policy``; the RunResult fields as a dict.

    ``policy`` keys: ``fuel``, ``memory_bytes``, ``table_elements``,
    ``deadline_s``, ``output_keep_bytes``, ``preopened_dirs``. ``emit``
    receives the result when the watchdog gives up on a blocked host call
    (then the process exits); without it the watchdog only interrupts.
    """
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(policy["fuel"])
    store.set_epoch_deadline(1)
    store.set_limits(memory_size=policy["memory_bytes"],
                     table_elements=policy["table_elements"],
                     instances=100, tables=100, memories=100)
    out, err = Capture(policy["output_keep_bytes"]), Capture(policy["output_keep_bytes"])
    wasi = wasmtime.WasiConfig()
    wasi.argv = [name]  # nothing inherited: no host argv, no environment, empty stdin
    wasi.stdout_custom = out
    wasi.stderr_custom = err
    for folder in policy["preopened_dirs"]:
        wasi.preopen_dir(folder, "/" + Path(folder).name, False)
    store.set_wasi(wasi)
    deadline_s = float(policy["deadline_s"])
    finished = threading.Event()
    started = time.perf_counter()

    def watchdog() -> None:
        if finished.wait(deadline_s):
            return
        engine.increment_epoch()  # compiled code traps at its next check
        if finished.wait(WATCHDOG_GRACE_S) or emit is None:
            return
        emit({"outcome": "deadline_exceeded",
              "detail": f"stopped by the sandbox: still in a host call "
                        f"{deadline_s + WATCHDOG_GRACE_S:g}s after starting",
              "wall_ms": round((time.perf_counter() - started) * 1000, 3),
              "fuel_used": 0, **out.fields("stdout"), **err.fields("stderr")})
        os._exit(0)

    def arm() -> None:
        nonlocal started
        started = time.perf_counter()
        threading.Thread(target=watchdog, daemon=True).start()

    try:
        runner = _run_component if kind == "component" else _run_core
        result = runner(engine, store, data, arm)
    except _Partial as partial:
        result = {**partial.result, **_ending(partial.cause, deadline_s)}
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:  # did not compile
        result = _ending(exc, deadline_s)
    finally:
        finished.set()
    wall_ms = (time.perf_counter() - started) * 1000
    return {**result, "wall_ms": round(wall_ms, 3),
            "fuel_used": policy["fuel"] - store.get_fuel(),
            **out.fields("stdout"), **err.fields("stderr")}


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """Child entry point: ``MODULE KIND NAME POLICY_JSON``; prints one JSON result."""
    module, kind, name, policy = argv
    _emit(run(Path(module).read_bytes(), kind, name, json.loads(policy), emit=_emit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
