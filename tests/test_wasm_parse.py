"""Reading WebAssembly binaries: kinds, import modules, refusals."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import wasmtime
import wasmtime.component
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


def test_component_host_supplied_imports_are_listed() -> None:
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
    with pytest.raises(WasmModuleError, match="c.wasm does not validate: unexpected end-of-file"):
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
    with pytest.raises(WasmModuleError, match=r"is not a regular file \(directory\)"):
        parse_file(tmp_path)


def test_checked_in_modules_match_their_wat_sources() -> None:
    sources = sorted(WASM_DIR.glob("*.wat"))
    assert [s.stem for s in sources] == [
        "component", "infinite-loop", "typed-world", "unlisted-import", "wasi-p2-core",
        "wasi-preview1",
    ]
    for source in sources:
        assert source.with_suffix(".wasm").read_bytes() == wat(source.read_text()), source.name


def test_large_generated_module_validates_and_stays_under_target() -> None:
    data = large_core_module(300_000, import_modules=("wasi:a", "env"))
    assert 299_000 < len(data) <= 300_000
    assert parse_module(data).import_modules == ("env", "wasi:a")


def _leb(value: int, width: int = 0) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value or len(out) + 1 < width:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"


def nested_component(depth: int) -> bytes:
    inner = COMPONENT_HEADER
    for _ in range(depth):
        inner = COMPONENT_HEADER + b"\x04" + _leb(len(inner)) + inner
    return inner


def test_core_import_section_claiming_more_bytes_than_the_file_is_refused() -> None:
    data = bytes.fromhex("0061736d01000000027f01")
    for validate in (True, False):
        with pytest.raises(WasmModuleError) as caught:
            parse_module(data, source="m.wasm", validate=validate)
        assert caught.value.message in (
            "m.wasm does not validate: unexpected end-of-file (at offset 0xa)",
            "m.wasm is truncated (a section runs past the end)",
        )


def test_every_truncation_of_a_core_module_is_refused_as_bad_input() -> None:
    data = (WASM_DIR / "wasi-p2-core.wasm").read_bytes()
    outcomes = set()
    for length in range(8, len(data)):
        try:  # a cut at a section boundary can leave a valid (smaller) module
            parse_module(data[:length], source="cut.wasm")
            outcomes.add("valid")
        except WasmModuleError as exc:
            outcomes.add(exc.message.split(":")[0])
        with contextlib.suppress(WasmModuleError):  # listing only: never another error
            parse_module(data[:length], source="cut.wasm", validate=False)
    assert outcomes == {"valid", "cut.wasm does not validate"}
    for length in range(24, 120):  # cut inside the import section
        with pytest.raises(WasmModuleError, match="^cut.wasm does not validate: "):
            parse_module(data[:length], source="cut.wasm")


def test_deeply_nested_component_is_refused_without_recursion() -> None:
    with pytest.raises(WasmModuleError, match="does not validate"):
        parse_module(nested_component(3000), source="deep.wasm")
    assert parse_module(nested_component(3)).import_modules == ()


# Components wasmtime refuses to parse; a hand-written section reader accepted them.
REFUSED_COMPONENTS = {
    "import count as a 6-byte LEB128":
        COMPONENT_HEADER + b"\x0a\x06" + _leb(0, width=6),
    "an import naming a type index that does not exist":
        wat('(component (import "f" (func (type 7))))'),
    "the same import name twice":
        wat('(component (import "f" (func)) (import "f" (func)))'),
    "an import name that is neither kebab-case nor an interface":
        wat('(component (import "Not A Name!" (func)))'),
    "an unknown section id":
        COMPONENT_HEADER + b"\x7e\x00",
    "an export of a function that does not exist":
        COMPONENT_HEADER + b"\x0b\x06\x01\x00\x01f\x01\x05",
}


@pytest.mark.parametrize("name", sorted(REFUSED_COMPONENTS))
def test_components_wasmtime_refuses_are_refused(name: str) -> None:
    data = REFUSED_COMPONENTS[name]
    with pytest.raises(wasmtime.WasmtimeError):
        wasmtime.component.Component(wasmtime.Engine(), data)
    with pytest.raises(WasmModuleError, match="^c.wasm does not validate: "):
        parse_module(data, source="c.wasm")


def _wasmtime_host_imports(data: bytes) -> tuple[str, ...]:
    engine = wasmtime.Engine()
    imports = wasmtime.component.Component(engine, data).type.imports(engine)
    kinds = (wasmtime.component.ComponentInstanceType, wasmtime.component.FuncType,
             wasmtime.component.ResourceType, wasmtime.component.ModuleType,
             wasmtime.component.ComponentType)
    return tuple(sorted(n for n, item in imports.items() if isinstance(item.ty, kinds)))


def test_component_import_modules_are_what_wasmtime_says_a_host_supplies() -> None:
    components = [p for p in sorted(WASM_DIR.glob("*.wasm"))
                  if p.read_bytes()[4:8] == COMPONENT_HEADER[4:]]
    assert [p.name for p in components] == ["component.wasm", "typed-world.wasm"]
    for path in components:
        data = path.read_bytes()
        assert parse_module(data).import_modules == _wasmtime_host_imports(data), path.name
    typed = (WASM_DIR / "typed-world.wasm").read_bytes()
    assert parse_module(typed).import_modules == ("wasi:cli/environment@0.2.0",)


def test_type_only_imports_are_not_import_modules() -> None:
    data = wat("""(component
      (type $cfg (record (field "name" string)))
      (import "entity-config" (type $ec (eq $cfg)))
      (import "vendor:pkg/iface" (instance
        (export "entity-config" (type (eq $ec)))
        (export "get" (func (result string))))))""")
    assert parse_module(data).import_modules == ("vendor:pkg/iface",)


def test_non_regular_module_files_are_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "artifact.wasm"
    os.mkfifo(fifo)
    with pytest.raises(WasmModuleError, match=r"is not a regular file \(FIFO\)"):
        parse_file(fifo)  # a blocking open would hang here
    with pytest.raises(WasmModuleError, match=r"is not a regular file \(character device\)"):
        parse_file(Path("/dev/zero"))
