"""Rebuild every checked-in ``*.wasm`` here from its ``*.wat`` source (wasmtime.wat2wasm)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent


def main() -> None:
    for source in sorted(HERE.glob("*.wat")):
        target = source.with_suffix(".wasm")
        target.write_bytes(bytes(wasmtime.wat2wasm(source.read_text())))
        print(f"{source.name} -> {target.name}")


if __name__ == "__main__":
    main()
