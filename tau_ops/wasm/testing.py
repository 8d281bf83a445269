"""Module builders for tests, benchmarks and notebooks (large modules are made, not committed)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_IMPORTS: tuple[str, ...] = ("wasi:cli/environment@0.2.0",)


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _leb(len(raw)) + raw


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(payload)) + payload


def _vec(items: Sequence[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def large_core_module(
    target_bytes: int,
    *,
    import_modules: Sequence[str] = DEFAULT_IMPORTS,
    body_instructions: int = 24,
) -> bytes:
    """A valid core module of at most ``target_bytes`` (within ~100 bytes), of many small functions.

    Real code rather than one big data segment, so validation has work to do
    (like a compiled application), and each import module gets one
    ``() -> ()`` function import named ``f``.

    Parameters
    ----------
    target_bytes : int
        Wanted size of the module, in bytes (at least one function is made).
    import_modules : sequence of str, default ("wasi:cli/environment@0.2.0",)
        Import module names, one function import each (a compliant default).
    body_instructions : int, default 24
        ``i32.const``/``drop`` pairs in each function body.

    Returns
    -------
    bytes
        The module's binary (WebAssembly core, version 1).

    Examples
    --------
    >>> from tau_ops.wasm import parse_module
    >>> module = large_core_module(4096, import_modules=["env"])
    >>> 3900 < len(module) <= 4096, parse_module(module).import_modules
    (True, ('env',))
    """
    body_code = b"".join(
        b"\x41" + _leb(i * 37 % 100_000) + b"\x1a" for i in range(body_instructions)
    )
    body = b"\x00" + body_code + b"\x0b"  # no locals; (i32.const k, drop)*; end
    entry = _leb(len(body)) + body
    header = b"\0asm\x01\x00\x00\x00"
    types = _section(1, _vec([b"\x60\x00\x00"]))
    imports = _section(2, _vec([_name(m) + _name("f") + b"\x00\x00" for m in import_modules]))
    fixed = len(header) + len(types) + len(imports) + 32
    count = max(1, (target_bytes - fixed) // (len(entry) + 1))
    functions = _section(3, _leb(count) + b"\x00" * count)
    code = _section(10, _leb(count) + entry * count)
    return header + types + imports + functions + code
