"""Reading the DID entropy from a file or standard input, so it never shows in a process list."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from tau_ops.errors import IdentifierError
from tau_ops.jsonio import LIMITS, read_bounded

STDIN = "-"
"""The entropy-file name that means standard input."""


def _strip_line_end(raw: bytes) -> bytes:
    for ending in (b"\r\n", b"\n"):
        if raw.endswith(ending):
            return raw[: -len(ending)]
    return raw


def read_entropy(path: Path | str, *, stdin: BinaryIO | None = None) -> bytes:
    """The entropy held in a file (``-`` for standard input), one trailing line end removed.

    The bytes are otherwise used verbatim, so a file written with
    ``printf '%s\\n' SECRET`` or ``echo SECRET`` gives the same identity as
    ``--deployment-wasm-browser-did-entropy SECRET``.

    Parameters
    ----------
    path : Path or str
        A regular file, or ``"-"`` to read ``stdin``. At most
        ``LIMITS["did_entropy"]`` bytes (64 KiB).
    stdin : BinaryIO, optional
        The stream for ``"-"`` (default: the process's standard input).

    Returns
    -------
    bytes
        The entropy; empty-ness is checked by the derivation.

    Raises
    ------
    IdentifierError
        The file cannot be read, is not a regular file (a FIFO or device is
        refused without blocking; pipe through ``-`` instead), or is too large
        (``field`` is ``entropy_file``).

    Examples
    --------
    >>> import io
    >>> read_entropy("-", stdin=io.BytesIO(b"local-dev-seed\\n"))
    b'local-dev-seed'
    """
    limit = LIMITS["did_entropy"]
    if str(path) == STDIN:
        if stdin is None:
            import sys

            stdin = sys.stdin.buffer
        raw = stdin.read(limit + 1)
        if len(raw) > limit:
            raise IdentifierError(f"entropy on standard input is over the {limit}-byte limit",
                                  field="entropy_file")
        return _strip_line_end(raw)
    try:
        return _strip_line_end(read_bounded(path, max_bytes=limit, what="entropy file"))
    except OSError as exc:
        message = (f"cannot read entropy file {path}: {exc.strerror}" if exc.strerror
                   else str(exc))
        raise IdentifierError(message, field="entropy_file") from exc
