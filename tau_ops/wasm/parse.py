"""Read a WebAssembly binary: kind, validation, and import module names, without compiling.

Compiling a module is orders of magnitude slower than validating it, so this
module never constructs a ``wasmtime.Module``: core modules are validated with
``wasmtime.Module.validate`` and their import section is read directly from
the binary; components are walked section by section (every embedded core
module is validated the same way) and their top-level import names are read
from the component import section (id 10). Full component type checking
happens when the smoke harness compiles the component.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import wasmtime

from tau_ops.errors import WasmModuleError

MAGIC = b"\0asm"
CORE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_VERSION_LAYER = b"\x0d\x00\x01\x00"
CORE_IMPORT_SECTION = 2
COMPONENT_CORE_MODULE_SECTION = 1
COMPONENT_NESTED_SECTION = 4
COMPONENT_IMPORT_SECTION = 10

ModuleKind = Literal["core", "component"]


@dataclass(frozen=True)
class ParsedModule:
    """What packaging needs to know about a binary: its kind and what it imports."""

    kind: ModuleKind
    size_bytes: int
    import_modules: tuple[str, ...]


@functools.cache
def validation_engine() -> wasmtime.Engine:
    """One engine per process for validation (creating engines is not free)."""
    return wasmtime.Engine()


class _Truncated(Exception):
    """The binary ended inside a structure."""


class _Reader:
    """A cursor over a bytes view with the LEB128 and name readers WebAssembly uses."""

    def __init__(self, data: memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def at_end(self) -> bool:
        return self.pos >= self.end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Truncated
        value = self.data[self.pos]
        self.pos += 1
        return value

    def leb(self) -> int:
        """An unsigned LEB128 (also skips a signed one: same length)."""
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
            if shift > 70:
                raise WasmModuleError("is malformed: an LEB128 integer is too long")

    def take(self, count: int) -> memoryview:
        if count > self.end - self.pos:
            raise _Truncated
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def name(self) -> str:
        raw = bytes(self.take(self.leb()))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WasmModuleError("has an import name that is not valid UTF-8") from None

    def sections(self) -> list[tuple[int, int, int]]:
        """(id, start, end) of every section from the cursor to the end."""
        found = []
        while not self.at_end():
            section_id = self.byte()
            size = self.leb()
            start = self.pos
            if size > self.end - start:
                raise _Truncated
            self.pos = start + size
            found.append((section_id, start, start + size))
        return found


# Abstract heap types that stand alone as a reference type byte (funcref, externref, ...).
_SHORT_REFTYPES = frozenset(range(0x69, 0x75))
_NUMERIC_VALTYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B})


def _skip_heap_type(r: _Reader) -> None:
    r.leb()  # an abstract heap type byte or a type index, both one s33


def _skip_reftype(r: _Reader, first: int) -> None:
    if first in (0x63, 0x64):  # (ref null ht) / (ref ht)
        _skip_heap_type(r)
    elif first not in _SHORT_REFTYPES:
        raise WasmModuleError(f"has an unsupported reference type 0x{first:02x} in an import")


def _skip_valtype(r: _Reader) -> None:
    first = r.byte()
    if first not in _NUMERIC_VALTYPES:
        _skip_reftype(r, first)


def _skip_limits(r: _Reader) -> None:
    flags = r.byte()
    r.leb()
    if flags & 0x01:
        r.leb()
    if flags & 0x08:  # custom page size: log2 of the page size follows
        r.leb()


def _core_import_modules(data: memoryview) -> list[str]:
    reader = _Reader(data, 8)
    modules: list[str] = []
    while not reader.at_end():
        section_id = reader.byte()
        size = reader.leb()
        start = reader.pos
        if section_id == CORE_IMPORT_SECTION:
            r = _Reader(data, start, start + size)
            for _ in range(r.leb()):
                modules.append(r.name())
                r.name()
                kind = r.byte()
                if kind == 0x00:  # function: type index
                    r.leb()
                elif kind == 0x01:  # table: reftype + limits
                    _skip_reftype(r, r.byte())
                    _skip_limits(r)
                elif kind == 0x02:  # memory: limits
                    _skip_limits(r)
                elif kind == 0x03:  # global: valtype + mutability
                    _skip_valtype(r)
                    r.byte()
                elif kind == 0x04:  # tag: attribute + type index
                    r.byte()
                    r.leb()
                else:
                    raise WasmModuleError(f"has an unsupported import kind 0x{kind:02x}")
            return modules
        if section_id != 0 and section_id > CORE_IMPORT_SECTION:
            return modules  # sections are ordered: no import section follows
        reader.pos = start + size
    return modules


def _skip_externdesc(r: _Reader) -> None:
    sort = r.byte()
    if sort == 0x00:  # core module: 0x11 + core type index
        r.byte()
        r.leb()
    elif sort in (0x01, 0x04, 0x05):  # func, component, instance: type index
        r.leb()
    elif sort in (0x02, 0x03):  # value bound / type bound
        if r.byte() == 0x00 or sort == 0x02:
            r.leb()
    else:
        raise WasmModuleError(f"has an unsupported component import sort 0x{sort:02x}")


def _validate_core(data: bytes | memoryview) -> None:
    try:
        wasmtime.Module.validate(validation_engine(), bytes(data))
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        raise WasmModuleError(f"does not validate: {first}") from exc


def _walk_component(
    data: memoryview, start: int, end: int, *, top: bool, validate: bool
) -> list[str]:
    """Validate embedded core modules (recursively); return the top-level import names."""
    if bytes(data[start:start + 8]) != MAGIC + COMPONENT_VERSION_LAYER:
        raise WasmModuleError("has an embedded component with a bad preamble")
    names: list[str] = []
    for section_id, s_start, s_end in _Reader(data, start + 8, end).sections():
        if section_id == COMPONENT_CORE_MODULE_SECTION:
            if validate:
                _validate_core(data[s_start:s_end])
        elif section_id == COMPONENT_NESTED_SECTION:
            _walk_component(data, s_start, s_end, top=False, validate=validate)
        elif section_id == COMPONENT_IMPORT_SECTION and top:
            r = _Reader(data, s_start, s_end)
            for _ in range(r.leb()):
                prefix = r.byte()
                if prefix not in (0x00, 0x01):
                    raise WasmModuleError(
                        f"has an unsupported component import name form 0x{prefix:02x}"
                    )
                names.append(r.name())
                _skip_externdesc(r)
            if not r.at_end():
                raise WasmModuleError("has trailing bytes in its component import section")
        elif section_id > 12:
            raise WasmModuleError(f"has an unknown component section id {section_id}")
    return names


def parse_module(data: bytes, *, source: str = "<module>", validate: bool = True) -> ParsedModule:
    """Validate ``data`` and list its import modules; :class:`WasmModuleError` if not wasm.

    ``validate=False`` only lists imports (for callers that run
    :func:`validate_module` concurrently); the listing still refuses a binary
    whose structure it cannot follow.
    """
    if not data or data[:4] != MAGIC[: min(4, len(data))]:
        raise WasmModuleError(f"{source} is not WebAssembly (missing \\0asm magic)",
                              path=source)
    if len(data) < 8:
        raise WasmModuleError(f"{source} is truncated ({len(data)} bytes, a header needs 8)",
                              path=source)
    view = memoryview(data)
    header = data[4:8]
    try:
        if header == CORE_VERSION:
            if validate:
                _validate_core(data)
            imports = _core_import_modules(view)
            kind: ModuleKind = "core"
        elif header == COMPONENT_VERSION_LAYER:
            imports = _walk_component(view, 0, len(data), top=True, validate=validate)
            kind = "component"
        else:
            raise WasmModuleError(
                f"{source} has unsupported WebAssembly version/layer {header.hex()}", path=source
            )
    except _Truncated:
        raise WasmModuleError(f"{source} is truncated (a section runs past the end)",
                              path=source) from None
    except WasmModuleError as exc:
        if exc.path is None:
            raise WasmModuleError(f"{source} {exc.message}", path=source) from exc
        raise
    return ParsedModule(kind=kind, size_bytes=len(data), import_modules=tuple(sorted(set(imports))))


def validate_module(data: bytes, *, source: str = "<module>") -> None:
    """Full validation only (what :func:`parse_module` does besides listing imports)."""
    parse_module(data, source=source, validate=True)


def read_module_bytes(path: Path) -> bytes:
    """Read a module file; :class:`WasmModuleError` (exit 2) when it cannot be read."""
    try:
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise WasmModuleError(f"cannot read module {path}: is a directory", path=path) from exc
    except OSError as exc:
        raise WasmModuleError(f"cannot read module {path}: {exc.strerror}", path=path) from exc


def parse_file(path: Path) -> tuple[bytes, ParsedModule]:
    """Read and parse a module file."""
    data = read_module_bytes(path)
    return data, parse_module(data, source=str(path))
