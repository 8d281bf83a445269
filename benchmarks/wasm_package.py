"""Benchmark: packaging a ~2 MiB module, against the floor of read + sha256 + validate.

The floor is the work packaging cannot avoid: read the bytes, hash them, and
validate them with ``wasmtime.Module.validate``. Packaging adds the import
listing (read from the binary, no compile), the artifact and manifest writes
(atomic, fsync'd) and the locked ``state.json`` upsert. Both are measured
in the same run, interleaved, so machine noise hits them alike; a full
compile (``wasmtime.Module``) is measured once for scale.

    .venv/bin/python benchmarks/wasm_package.py [--runs 15] [--max-ratio 2.0] [--component]

``--component`` also packages a component embedding the same core module once.
Components are type-checked by ``wasmtime.component.Component`` on a skeleton
(function bodies replaced by ``unreachable`` after each core module validated),
so the cost left is per function: the benchmark module's ~35,000 tiny
functions are its worst case.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import wasmtime

from tau_ops.wasm import package_module
from tau_ops.wasm.parse import validation_engine
from tau_ops.wasm.testing import large_core_module

MIB = 1024 * 1024


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def floor(path: Path) -> None:
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    wasmtime.Module.validate(validation_engine(), data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size-mib", type=float, default=2.0)
    parser.add_argument("--component", action="store_true",
                        help="also time packaging a component wrapping the module (once)")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="exit 1 when the packaging/floor median ratio exceeds this")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tau-wasm-bench-") as tmp:
        root = Path(tmp)
        module = root / "module.wasm"
        # just under the profile limit, so the module is compliant and gets packaged
        module.write_bytes(large_core_module(int(args.size_mib * MIB) - 4096))
        size = module.stat().st_size
        floor(module)  # warm the engine and the page cache
        package_module(module, state_dir=root / "warm")
        floors: list[float] = []
        packs: list[float] = []
        for run in range(args.runs):
            t0 = time.perf_counter()
            floor(module)
            floors.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            package_module(module, state_dir=root / f"state-{run}")  # fresh dir: real writes
            packs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        wasmtime.Module(validation_engine(), module.read_bytes())
        compile_s = time.perf_counter() - t0
        component_ms = None
        if args.component:
            wrapped = root / "component.wasm"
            core = module.read_bytes()
            wrapped.write_bytes(b"\0asm\x0d\x00\x01\x00\x01" + _leb(len(core)) + core)
            t0 = time.perf_counter()
            package_module(wrapped, state_dir=root / "component-state")
            component_ms = (time.perf_counter() - t0) * 1000
    floor_ms = statistics.median(floors) * 1000
    pack_ms = statistics.median(packs) * 1000
    ratio = pack_ms / floor_ms
    print(f"module: {size} bytes ({size / MIB:.2f} MiB), runs={args.runs}")
    print(f"floor (read + sha256 + validate): median {floor_ms:.1f} ms")
    print(f"package_module (fresh state dir): median {pack_ms:.1f} ms")
    print(f"full compile (wasmtime.Module, once): {compile_s * 1000:.0f} ms")
    print(f"ratio package/floor: {ratio:.2f}")
    if component_ms is not None:
        print(f"component wrapping it, package_module (once): {component_ms:.0f} ms "
              f"({component_ms / floor_ms:.1f}x the core floor)")
    if args.max_ratio is not None and ratio > args.max_ratio:
        print(f"FAIL: ratio {ratio:.2f} > {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
