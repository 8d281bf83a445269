"""The one JSON reading policy of tau-ops, and bounded reads of input files.

Every reader (fixtures, ``state.json``, event lines, manifests, DID documents,
channel-store logs, the gateway, the analysis loaders' validity rule) decides
"is this JSON acceptable" here, so no two readers disagree about a line.

The policy (RFC 8259 as the seed's ``serde_json`` reads it, plus bounds):

- UTF-8 only; a byte-order mark is refused (``serde_json`` refuses it too);
- no duplicate object keys (the seed's fixture structs refuse them);
- no ``NaN``/``Infinity``/``-Infinity`` (not JSON);
- no lone surrogate escapes such as ``\\ud800`` (not Unicode scalar values);
- nesting depth at most :data:`MAX_DEPTH` (arrays and objects);
- a document at most the caller's byte limit (:data:`LIMITS`).

Integers stay Python ``int``; range checks belong to the schema that reads
them (for example :data:`MAX_UNIX_MS`). Files are opened without blocking and
refused unless they are regular files, so ``/dev/zero`` or a FIFO never hangs
or exhausts a reader.

Examples
--------
>>> parse_json(b'{"a": [1, 2]}')
{'a': [1, 2]}
>>> parse_json(b'{"a": 1, "a": 2}')
Traceback (most recent call last):
...
tau_ops.jsonio.JSONPolicyError: duplicate key 'a'
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Final

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects accepted in any document or line."""

MAX_UNIX_MS: Final = 253_402_300_799_999
"""Largest timestamp accepted in milliseconds: 9999-12-31T23:59:59.999Z."""

MIB: Final = 1024 * 1024
LIMITS: Final[dict[str, int]] = {
    "fixture": 128 * MIB,
    "state": 256 * MIB,
    "manifest": 1 * MIB,
    "did_document": 1 * MIB,
    "did_entropy": 64 * 1024,
    "journal": 1 * MIB,
    "pause_marker": 64 * 1024,
    "event_line": 1 * MIB,
    "jsonl_file": 1024 * MIB,
    "wasm_module": 64 * MIB,
}
"""Byte limit of each kind of input document (documented in docs/decisions.md)."""


class JSONPolicyError(ValueError):
    """A document breaks the JSON policy; the message says how, in one line."""


def _reject_constant(name: str) -> Any:
    raise JSONPolicyError(f"{name} is not JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONPolicyError(f"duplicate key {key!r}")
        out[key] = value
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_QUOTED = re.compile(rb'"[^"]*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting_deeper_than(text: str, limit: int) -> bool:
    """True when brackets outside strings nest deeper than ``limit`` levels.

    Runs at C speed: only quotes and brackets are kept (``bytes.translate``),
    strings are cut out, then innermost empty pairs are removed one level per
    pass: ``d`` passes empty a skeleton nested ``d`` deep. Unbalanced brackets
    stop the passes early (the decoder then reports the syntax error).
    """
    raw = text.encode("utf-8", "surrogatepass")
    if b"\\" in raw:  # an escaped quote does not end a string: cut strings exactly
        skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    else:
        # Dropping adjacent '""' only removes empty strings or joins neighbours.
        skeleton = _QUOTED.sub(b"", raw.translate(None, _NOT_STRUCTURE).replace(b'""', b""))
    for _ in range(limit + 1):
        if not skeleton:
            return False
        reduced = _EMPTY_PAIR.sub(b"", skeleton)
        if len(reduced) == len(skeleton):
            return False
        skeleton = reduced
    return True


def parse_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document under the tau-ops policy.

    Parameters
    ----------
    data : bytes or str
        The whole document (or one JSONL line). Bytes must be UTF-8.
    max_depth : int, default :data:`MAX_DEPTH`
        Deepest array/object nesting accepted.

    Returns
    -------
    Any
        The value: ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``.

    Raises
    ------
    JSONPolicyError
        Not UTF-8, a byte-order mark, invalid JSON, a duplicate key, NaN or
        Infinity, a lone surrogate, or nesting deeper than ``max_depth``.

    Examples
    --------
    >>> parse_json('[[[1]]]', max_depth=2)
    Traceback (most recent call last):
    ...
    tau_ops.jsonio.JSONPolicyError: nesting deeper than 2 levels
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if raw.startswith(b"\xef\xbb\xbf"):
            raise JSONPolicyError("a byte-order mark is not allowed")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONPolicyError(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = data
        if text.startswith("\ufeff"):
            raise JSONPolicyError("a byte-order mark is not allowed")
    # Counting brackets is C-speed; the exact scan runs only when it could matter.
    if text.count("[") + text.count("{") > max_depth and _nesting_deeper_than(text, max_depth):
        raise JSONPolicyError(f"nesting deeper than {max_depth} levels")
    try:
        value = _DECODER.decode(text)
    except JSONPolicyError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONPolicyError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        text = str(exc)
        if "int_max_str_digits" in text or "Exceeds the limit" in text:
            text = "a number has more than 4300 digits"
        raise JSONPolicyError(text) from None
    if "\\u" in text and _value_has_surrogate(value):
        raise JSONPolicyError("a lone surrogate escape is not a Unicode character")
    return value


def _value_has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return True
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _has_surrogate(key):
                    return True
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def read_bounded(path: Path | str, *, max_bytes: int, what: str) -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    Parameters
    ----------
    path : Path or str
        The file; a symlink to a regular file is followed (readers may follow links).
    max_bytes : int
        Largest size accepted, in bytes (see :data:`LIMITS`).
    what : str
        What the file is, for the error message ("fixture", "manifest").

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    FileNotFoundError
        The file does not exist (callers decide whether that is an error).
    OSError
        The file is not a regular file (``errno`` 0, message says what it is),
        is larger than ``max_bytes``, or cannot be read.

    Examples
    --------
    >>> read_bounded("/dev/zero", max_bytes=10, what="fixture")
    Traceback (most recent call last):
    ...
    OSError: fixture /dev/zero is not a regular file (character device)
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{what} {path} is not a regular file ({_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise OSError(
                f"{what} {path} is {info.st_size} byte{'' if info.st_size == 1 else 's'}, "
                f"over the {max_bytes}-byte limit"
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(max_bytes + 1 - total, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise OSError(f"{what} {path} grew past the {max_bytes}-byte limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def is_json_int(value: Any) -> bool:
    """True for a JSON integer (Python ``int`` but not ``bool``).

    Parameters
    ----------
    value : Any
        A value as :func:`parse_json` returns it.

    Returns
    -------
    bool
        Whether ``value`` is an integer; ``true``/``false`` are not (RFC 8259
        keeps them apart, Python's ``bool`` does not).

    Examples
    --------
    >>> [is_json_int(v) for v in (1, True, 1.0, "1")]
    [True, False, False, False]
    """
    return isinstance(value, int) and not isinstance(value, bool)


_JSON_KINDS: Final[dict[str, str]] = {
    "int": "an integer", "string": "a string", "bool": "true or false", "float": "a number",
    "list": "an array", "dict": "an object", "model": "an object", "model_attributes": "an object",
}


def json_text(value: Any, *, limit: int = 60) -> str:
    """A value as JSON text for a one-line message, cut to ``limit`` characters.

    Parameters
    ----------
    value : Any
        A value as :func:`parse_json` returns it (anything else is shown with ``str``).
    limit : int
        Most characters shown; a longer text ends with ``...``.

    Returns
    -------
    str
        JSON notation (``true``, ``"eu"``, ``[1]``), never Python's (``True``, ``'eu'``).

    Examples
    --------
    >>> json_text(True), json_text("eu"), json_text("x" * 80, limit=8)
    ('true', '"eu"', '"xxxx...')
    """
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def describe_schema_error(errors: list[Any], *, skip: int = 0) -> tuple[str, str]:
    """The first schema error of a pydantic validation, in JSON terms, for one ``error:`` line.

    Every reader that validates a document against a model (fixture, manifest,
    DID payload, snapshot manifest, fleet member) words its message here, so
    no message shows Python notation (``True``, ``'x'``) or library phrasing.

    Parameters
    ----------
    errors : list of dict
        ``ValidationError.errors()`` of pydantic.
    skip : int
        Leading location parts the caller names itself (e.g. ``cases``, index).

    Returns
    -------
    tuple of (str, str)
        The field path (``expected.status_code``; ``""`` for the document) and
        the message, such as ``must be an integer (got true)``.

    Examples
    --------
    >>> from pydantic import BaseModel, ValidationError
    >>> class Case(BaseModel, strict=True):
    ...     replicas: int
    >>> try:
    ...     Case.model_validate({"replicas": True})
    ... except ValidationError as exc:
    ...     describe_schema_error(exc.errors())
    ('replicas', 'must be an integer (got true)')
    """
    if not errors:
        return "", "is not valid"
    err = errors[0]
    where = ".".join(str(part) for part in list(err.get("loc", ()))[skip:])
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    got = f" (got {json_text(err.get('input'))})"
    base = kind.split("_", 1)[0] if kind.endswith(("_type", "_parsing", "_from_float")) else ""
    if kind == "missing":
        return where, "is required"
    if kind == "json_invalid":  # the document itself, not a value: no "got"
        return where, f"not valid JSON: {ctx.get('error', err.get('msg', ''))}"
    if kind == "extra_forbidden":
        return where, "is not a known field"
    if base == "model" or kind in ("model_type", "model_attributes_type"):
        return where, "must be an object" + got
    if base in _JSON_KINDS or kind in ("int_from_float",):
        return where, f"must be {_JSON_KINDS.get(base, 'an integer')}{got}"
    if kind in ("literal_error", "enum"):
        expected = re.sub(r"'([^']*)'", r'"\1"', str(ctx.get("expected", "")))
        return where, f"must be one of {expected}{got}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return where, f"must be {bounds[kind]} {json_text(limit)}{got}"
    if kind in ("string_too_long", "too_long"):
        return where, f"is too long (at most {ctx.get('max_length')}){got}"
    if kind in ("string_too_short", "too_short"):
        return where, f"is too short (at least {ctx.get('min_length')}){got}"
    message = str(err.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return where, message[:1].lower() + message[1:] + got


def error_text(exc: BaseException) -> str:
    """One line saying why a document was refused, whatever raised it.

    Parameters
    ----------
    exc : BaseException
        A pydantic ``ValidationError`` (worded by :func:`describe_schema_error`),
        a :class:`JSONPolicyError`, or any other error (its text on one line).

    Returns
    -------
    str
        For example ``field 'files.0.size': must be an integer (got "7")``.

    Examples
    --------
    >>> error_text(JSONPolicyError("duplicate key 'a'"))
    "duplicate key 'a'"
    """
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        where, message = describe_schema_error(errors())
        return f"field '{where}': {message}" if where else message
    return " ".join((str(exc) or type(exc).__name__).split())
