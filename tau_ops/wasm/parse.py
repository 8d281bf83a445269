"""Read a WebAssembly binary: kind, validation, and import module names.

wasmtime is the authority on what is WebAssembly. Core modules are validated
with ``wasmtime.Module.validate`` (compiling is orders of magnitude slower and
is not needed) and their import section, once validated, is read directly from
the binary. Components are handed whole to ``wasmtime.component.Component``,
which parses, validates and type-checks them; their import modules are the
names wasmtime says a host must supply (instances, functions, resources,
modules, components), never a type-only import such as ``entity-config``
bound to a record type. Whatever wasmtime refuses is refused here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import wasmtime
import wasmtime.component as wc

from tau_ops import jsonio
from tau_ops.errors import WasmModuleError
from tau_ops.timefmt import plural
from tau_ops.wasm.skeleton import CannotSkeleton, skeleton

MAGIC = b"\0asm"
CORE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_VERSION_LAYER = b"\x0d\x00\x01\x00"
CORE_IMPORT_SECTION = 2

ModuleKind = Literal["core", "component"]

# Import kinds wasmtime reports that a host does not have to supply: a type import
# (``(import "entity-config" (type (eq ...)))``) names a type, not a capability.
_HOST_SUPPLIED = (wc.ComponentInstanceType, wc.FuncType, wc.ResourceType, wc.ModuleType,
                  wc.ComponentType)


@dataclass(frozen=True)
class ParsedModule:
    """What packaging needs to know about a binary.

    Attributes
    ----------
    kind : {"core", "component"}
        A core module (version 1) or a component (layer 1).
    size_bytes : int
        Size of the binary, in bytes.
    import_modules : tuple of str
        Sorted, distinct import module names (core) or host-supplied import
        names (component).
    validated : bool
        True when wasmtime has already validated the binary (components always,
        core modules unless ``validate=False`` was asked for).

    Examples
    --------
    >>> from tau_ops.wasm.testing import large_core_module
    >>> parsed = parse_module(large_core_module(400, import_modules=["env", "wasi:io/poll"]))
    >>> parsed.kind, parsed.import_modules, parsed.validated
    ('core', ('env', 'wasi:io/poll'), True)
    """

    kind: ModuleKind
    size_bytes: int
    import_modules: tuple[str, ...]
    validated: bool = True


@functools.cache
def validation_engine() -> wasmtime.Engine:
    """One engine per process for validation (creating engines is not free)."""
    return wasmtime.Engine()


@functools.cache
def component_engine() -> wasmtime.Engine:
    """The engine that parses components: unoptimised code, since nothing runs it."""
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"
    return wasmtime.Engine(config)


class _Truncated(Exception):
    """The binary ended inside a structure."""


class _Reader:
    """A bounded cursor with the LEB128 and name readers WebAssembly uses."""

    def __init__(self, data: memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

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


# Abstract heap types that stand alone as a reference type byte (funcref, externref, ...).
_SHORT_REFTYPES = frozenset(range(0x69, 0x75))
_NUMERIC_VALTYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B})


def _skip_reftype(r: _Reader, first: int) -> None:
    if first in (0x63, 0x64):  # (ref null ht) / (ref ht): one s33 heap type follows
        r.leb()
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


def _skip_import_desc(r: _Reader) -> None:
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


def _core_import_modules(data: memoryview) -> list[str]:
    reader = _Reader(data, 8)
    while not reader.at_end():
        section_id = reader.byte()
        size = reader.leb()
        start = reader.pos
        if size > reader.end - start:
            raise _Truncated
        if section_id == CORE_IMPORT_SECTION:
            r = _Reader(data, start, start + size)
            modules: list[str] = []
            for _ in range(r.leb()):
                modules.append(r.name())
                r.name()
                _skip_import_desc(r)
            return modules
        if section_id != 0 and section_id > CORE_IMPORT_SECTION:
            return []  # sections are ordered: no import section follows
        reader.pos = start + size
    return []


def _first_line(exc: Exception, fallback: str) -> str:
    """wasmtime's cause ("... (at offset 0xe)"), not its generic first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if "Caused by:" in lines:
        after = lines[lines.index("Caused by:") + 1:]
        if after:
            return after[-1]
    return lines[0] if lines else fallback


def _validate_core(data: bytes | memoryview) -> None:
    try:
        wasmtime.Module.validate(validation_engine(), bytes(data))
    except wasmtime.WasmtimeError as exc:
        raise WasmModuleError(
            f"does not validate: {_first_line(exc, 'invalid module')}") from exc


def _compile_component(data: bytes) -> wc.Component:
    try:
        return wc.Component(component_engine(), data)
    except wasmtime.WasmtimeError as exc:
        raise WasmModuleError(
            f"does not validate: {_first_line(exc, 'invalid component')}") from exc


def _component_imports(data: bytes) -> list[str]:
    """Host-supplied import names, as wasmtime type-checks the component.

    wasmtime compiles a component's code; its skeleton (every embedded core
    module validated on its own, then bodies replaced by ``unreachable``) has
    the same structure and imports and compiles in milliseconds. When the
    skeleton cannot be built or is refused, the original bytes decide.
    """
    try:
        reduced = skeleton(data, _validate_core)  # WasmModuleError: a core module is invalid
    except CannotSkeleton:
        return _host_imports(_compile_component(data))
    try:
        return _host_imports(_compile_component(reduced))
    except WasmModuleError:
        return _host_imports(_compile_component(data))  # the original bytes decide


def _host_imports(component: wc.Component) -> list[str]:
    imports = component.type.imports(component_engine())
    return [name for name, item in imports.items() if isinstance(item.ty, _HOST_SUPPLIED)]


def parse_module(data: bytes, *, source: str = "<module>", validate: bool = True) -> ParsedModule:
    """Validate ``data`` and list its import modules.

    Parameters
    ----------
    data : bytes
        The whole binary.
    source : str
        Where it came from, for error messages.
    validate : bool
        ``False`` lists a core module's imports without validating it (for
        callers that run :func:`validate_module` concurrently); components are
        always validated, since wasmtime lists their imports.

    Returns
    -------
    ParsedModule

    Raises
    ------
    WasmModuleError
        Not WebAssembly, truncated, an unsupported version, or refused by wasmtime.

    Examples
    --------
    >>> parse_module(b"\\0asm\\x01\\x00\\x00\\x00").import_modules
    ()
    """
    if not data or data[:4] != MAGIC[: min(4, len(data))]:
        raise WasmModuleError(f"{source} is not WebAssembly (missing \\0asm magic)",
                              path=source)
    if len(data) < 8:
        raise WasmModuleError(f"{source} is truncated ({plural(len(data), 'byte')}, "
                              "a header needs 8)",
                              path=source)
    header = data[4:8]
    try:
        if header == CORE_VERSION:
            if validate:
                _validate_core(data)
            imports = _core_import_modules(memoryview(data))
            kind: ModuleKind = "core"
        elif header == COMPONENT_VERSION_LAYER:
            imports = _component_imports(bytes(data))
            kind, validate = "component", True
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
    return ParsedModule(kind=kind, size_bytes=len(data),
                        import_modules=tuple(sorted(set(imports))), validated=validate)


def validate_module(data: bytes, *, source: str = "<module>") -> None:
    """Full validation only (what :func:`parse_module` does besides listing imports).

    Parameters
    ----------
    data : bytes
        The whole binary.
    source : str, default "<module>"
        Where it came from, for error messages.

    Raises
    ------
    WasmModuleError
        wasmtime refuses the binary.

    Examples
    --------
    A function section whose function has no type:

    >>> validate_module(b"\\0asm\\x01\\x00\\x00\\x00\\x03\\x02\\x01\\x00", source="bad.wasm")
    Traceback (most recent call last):
    ...
    tau_ops.errors.WasmModuleError: bad.wasm does not validate: unknown type 0: ...
    """
    parse_module(data, source=source, validate=True)


def read_module_bytes(path: Path) -> bytes:
    """Read a module file of at most ``jsonio.LIMITS['wasm_module']`` bytes.

    Parameters
    ----------
    path : Path
        A regular file (a FIFO or a device such as ``/dev/zero`` is refused unread).

    Returns
    -------
    bytes
        The whole file.

    Raises
    ------
    WasmModuleError
        Missing, not a regular file, too large or unreadable (exit 2).

    Examples
    --------
    >>> read_module_bytes(Path("/dev/zero"))
    Traceback (most recent call last):
    ...
    tau_ops.errors.WasmModuleError: cannot read ...
    """
    try:
        return jsonio.read_bounded(path, max_bytes=jsonio.LIMITS["wasm_module"], what="module")
    except OSError as exc:
        if exc.strerror:
            raise WasmModuleError(f"cannot read module {path}: {exc.strerror}",
                                  path=path) from exc
        raise WasmModuleError(f"cannot read module {path}: it {str(exc).split(f'{path} ', 1)[-1]}",
                              path=path) from exc


def parse_file(path: Path) -> tuple[bytes, ParsedModule]:
    """Read and validate a module file and list its imports.

    Reads as :func:`read_module_bytes` (bounded, regular files only), then
    parses and validates as :func:`parse_module` (wasmtime decides, SPEC
    section 6).

    Parameters
    ----------
    path : Path
        A WebAssembly core module or component, at most
        ``jsonio.LIMITS['wasm_module']`` bytes.

    Returns
    -------
    tuple of (bytes, ParsedModule)
        The file's bytes and what was learned from them.

    Raises
    ------
    WasmModuleError
        The file is missing, not a regular file, too large or unreadable, or
        not WebAssembly that wasmtime accepts (exit 2).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.wasm.testing import large_core_module
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     module = Path(tmp) / "m.wasm"
    ...     _ = module.write_bytes(large_core_module(400))
    ...     data, parsed = parse_file(module)
    >>> len(data) == parsed.size_bytes, parsed.import_modules
    (True, ('wasi:cli/environment@0.2.0',))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "x.wasm").write_bytes(b"not wasm")
    ...     parse_file(Path(tmp) / "x.wasm")
    Traceback (most recent call last):
    ...
    tau_ops.errors.WasmModuleError: ... is not WebAssembly (missing \\0asm magic)
    """
    data = read_module_bytes(path)
    return data, parse_module(data, source=str(path))
