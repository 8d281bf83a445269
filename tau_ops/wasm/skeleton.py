"""A component's skeleton: the same component with every function body reduced to ``unreachable``.

``wasmtime.component.Component`` compiles the code of every embedded core
module, which costs seconds for a component of a few MiB, while what
packaging needs from it (validation, type checking, the import list) does
not depend on function bodies once each core module has validated on its own.
So :func:`skeleton` validates every embedded core module with
``wasmtime.Module.validate`` (the cheap, authoritative check of its code) and
rebuilds the component with each code section replaced by bodies of
``unreachable``; every component-level byte is copied unchanged, so wasmtime
type-checks exactly the original structure.

Anything this rewriter cannot follow raises :class:`CannotSkeleton`; the
caller then hands the original bytes to wasmtime, which stays the authority.
"""

from __future__ import annotations

from collections.abc import Callable

MAGIC = b"\0asm"
CORE_HEADER = MAGIC + b"\x01\x00\x00\x00"
COMPONENT_HEADER = MAGIC + b"\x0d\x00\x01\x00"
CORE_CODE_SECTION = 10
COMPONENT_CORE_MODULE_SECTION = 1
COMPONENT_NESTED_SECTION = 4
MAX_NESTING = 32
_UNREACHABLE_BODY = b"\x03\x00\x00\x0b"  # size 3: no locals, unreachable, end


class CannotSkeleton(Exception):
    """The binary is not one this rewriter can follow (the caller uses the original)."""


def leb(value: int) -> bytes:
    """Unsigned LEB128 encoding of ``value``."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_leb(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(5):
        if pos >= end:
            raise CannotSkeleton("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
    raise CannotSkeleton("LEB128 too long")


def _sections(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(id, header start, body start, end) of every section."""
    found = []
    pos = start
    while pos < end:
        section_id = data[pos]
        size, body = _read_leb(data, pos + 1, end)
        if size > end - body:
            raise CannotSkeleton("section runs past the end")
        found.append((section_id, pos, body, body + size))
        pos = body + size
    return found


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + leb(len(payload)) + payload


def _core(data: bytes, start: int, end: int, validate: Callable[[bytes], None]) -> bytes:
    validate(data[start:end])  # raises the caller's error when wasmtime refuses the module
    if data[start:start + 8] != CORE_HEADER:
        raise CannotSkeleton("not a core module")
    out = [CORE_HEADER]
    for section_id, header, s_start, s_end in _sections(data, start + 8, end):
        if section_id == CORE_CODE_SECTION:
            count, _ = _read_leb(data, s_start, s_end)
            out.append(_section(section_id, leb(count) + _UNREACHABLE_BODY * count))
        elif section_id != 0:  # custom sections do not matter to validation
            out.append(data[header:s_end])
    return b"".join(out)


def _component(data: bytes, start: int, end: int, validate: Callable[[bytes], None],
               depth: int) -> bytes:
    if depth > MAX_NESTING:
        raise CannotSkeleton("nested too deep")
    if data[start:start + 8] != COMPONENT_HEADER:
        raise CannotSkeleton("not a component")
    out = [COMPONENT_HEADER]
    for section_id, header, s_start, s_end in _sections(data, start + 8, end):
        if section_id == COMPONENT_CORE_MODULE_SECTION:
            out.append(_section(section_id, _core(data, s_start, s_end, validate)))
        elif section_id == COMPONENT_NESTED_SECTION:
            out.append(_section(section_id,
                                _component(data, s_start, s_end, validate, depth + 1)))
        else:  # every component-level byte as it was
            out.append(data[header:s_end])
    return b"".join(out)


def skeleton(data: bytes, validate: Callable[[bytes], None]) -> bytes:
    """The component ``data`` with its code replaced; ``validate`` checks each core module.

    Parameters
    ----------
    data : bytes
        A component binary.
    validate : callable
        Called with every embedded core module's bytes; raises when it is invalid.

    Returns
    -------
    bytes
        A component of the same structure whose functions all trap.

    Raises
    ------
    CannotSkeleton
        The structure could not be followed; use the original bytes.
    """
    return _component(data, 0, len(data), validate, 0)
