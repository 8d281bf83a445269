"""Reading WebAssembly binaries: kinds, import modules, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from builders import TESTDATA

from tau_ops.errors import WasmModuleError
from tau_ops.wasm.parse import ParsedModule, parse_file, parse_module
from tau_ops.wasm.testing import large_core_module

WASM_DIR = TESTDATA / "deployment-wasm"


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def test_minimal_module_has_no_imports() -> None:
    assert parse_file(WASM_DIR / "edge-runtime.wasm")[1] == ParsedModule(
        kind="core", size_bytes=8, import_modules=()
    )


def test_core_imports_of_every_kind_are_listed_sorted_and_distinct() -> None:
    data = wat("""(module
      (import "wasi:cli/environment@0.2.0" "a" (func))
      (import "wasi:cli/environment@0.2.0" "b" (func (param i32)))
      (import "env" "memory" (memory 1 2))
      (import "env" "table" (table 1 funcref))
      (import "zeta" "g" (global (mut i64)))
      (import "alpha" "r" (global externref)))""")
    assert parse_module(data).import_modules == (
        "alpha", "env", "wasi:cli/environment@0.2.0", "zeta"
    )


def test_component_import_names_are_read_without_compiling() -> None:
    data = wat("""(component
      (import "wasi:cli/exit@0.2.0" (instance (export "exit" (func (param "s" (result))))))
      (import "wasi:io/streams@0.2.0" (instance))
      (import "f" (func))
      (import "t" (type (sub resource)))
      (core module (func (export "x"))))""")
    assert parse_module(data) == ParsedModule(
        kind="component", size_bytes=len(data),
        import_modules=("f", "t", "wasi:cli/exit@0.2.0", "wasi:io/streams@0.2.0"),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is not WebAssembly"),
        (b"\x7fELF\x02\x01\x01\x00", "is not WebAssembly"),
        (b"(module)", "is not WebAssembly"),
        (b"\0as", "is truncated"),
        (b"\0asm\x01\x00", "is truncated"),
        (b"\0asm\x02\x00\x00\x00", "unsupported WebAssembly version"),
        (b"\0asm\x01\x00\x00\x00\x01\x05\x01", "does not validate"),
    ],
)
def test_non_webassembly_is_refused_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(WasmModuleError, match=message):
        parse_module(data, source="m.wasm")


def test_module_that_does_not_validate_is_refused() -> None:
    # a function declared to return i32 whose body returns nothing
    data = bytes.fromhex("0061736d01000000010501600001 7f 03020100 0a040102000b".replace(" ", ""))
    with pytest.raises(WasmModuleError, match="does not validate"):
        parse_module(data, source="bad.wasm")


def test_truncated_component_is_refused() -> None:
    data = (WASM_DIR / "component.wasm").read_bytes()
    assert parse_module(data).kind == "component"
    with pytest.raises(WasmModuleError, match="truncated"):
        parse_module(data[:-5], source="c.wasm")


def test_component_with_invalid_embedded_core_module_is_refused() -> None:
    good = (WASM_DIR / "component.wasm").read_bytes()
    core_at = good.index(b"\0asm\x01\x00\x00\x00")
    broken = bytearray(good)
    broken[core_at + 8] = 0x7E  # an unknown section id inside the embedded core module
    with pytest.raises(WasmModuleError, match="does not validate"):
        parse_module(bytes(broken), source="c.wasm")


def test_unreadable_module_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WasmModuleError, match="cannot read module"):
        parse_file(tmp_path / "missing.wasm")
    with pytest.raises(WasmModuleError, match="is a directory"):
        parse_file(tmp_path)


def test_checked_in_modules_match_their_wat_sources() -> None:
    sources = sorted(WASM_DIR.glob("*.wat"))
    assert [s.stem for s in sources] == [
        "component", "infinite-loop", "unlisted-import", "wasi-p2-core", "wasi-preview1"
    ]
    for source in sources:
        assert source.with_suffix(".wasm").read_bytes() == wat(source.read_text()), source.name


def test_large_generated_module_validates_and_stays_under_target() -> None:
    data = large_core_module(300_000, import_modules=("wasi:a", "env"))
    assert 299_000 < len(data) <= 300_000
    assert parse_module(data).import_modules == ("env", "wasi:a")
