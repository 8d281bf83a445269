"""Consistent reads of files writers replace or rotate underneath a reader.

A reader of ``runtime-events.jsonl`` and its backups can overlap a rotation
(every backup renamed) or a commit (``state.json`` replaced). Readers take a
:func:`fingerprint` of the files before and after reading and retry through
:func:`read_consistently`, so they see one consistent set or say they could not.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from tau_ops import fsguard, jsonio
from tau_ops.errors import StateError, TauOpsError

Fingerprint = tuple[tuple[str, int, int, int], ...]
T = TypeVar("T")
READ_ATTEMPTS = 5


def fingerprint(paths: Iterable[Path]) -> Fingerprint:
    """(path, device, inode, size) of each path; a missing path has inode 0 and size -1.

    Parameters
    ----------
    paths : iterable of Path
        The files whose change matters.

    Returns
    -------
    tuple
        One ``(path, st_dev, st_ino, size in bytes)`` per path, in order.

    Examples
    --------
    >>> fingerprint([Path("/nonexistent/x")])
    (('/nonexistent/x', 0, 0, -1),)
    """
    out = []
    for path in paths:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            out.append((str(path), 0, 0, -1))
        else:
            out.append((str(path), info.st_dev, info.st_ino, info.st_size))
    return tuple(out)


def read_consistently(
    list_files: Callable[[], list[Path]],
    read: Callable[[list[Path]], T],
    *,
    what: str,
    attempts: int = READ_ATTEMPTS,
) -> T:
    """Run ``read`` on a set of files no writer changed meanwhile (rotation, commit).

    The files' (inode, size) are taken before and after the read; when they
    differ the read is retried, at most ``attempts`` times. An error raised
    while the files changed (a file renamed away mid-read) is retried too.

    Parameters
    ----------
    list_files : callable
        Returns the files to read (and any file whose change matters, such as
        ``state.json`` or the journal), in a stable order.
    read : callable
        Reads the listed files and returns the result.
    what : str
        What is read, for the error message.
    attempts : int
        Reads tried before giving up.

    Returns
    -------
    T
        The result of the first read during which no file changed.

    Raises
    ------
    StateError
        The files changed during every attempt.

    Examples
    --------
    >>> read_consistently(lambda: [], lambda files: len(files), what="nothing")
    0
    """
    for _ in range(attempts):
        files = list_files()
        before = fingerprint(files)
        try:
            result = read(files)
        except (OSError, TauOpsError):
            if fingerprint(list_files()) == before:
                raise  # a real failure, not a file replaced underneath the reader
            continue
        if fingerprint(list_files()) == before:
            return result
    raise StateError(f"{what} kept changing while being read ({attempts} attempts); "
                     "try again when the runner is idle")


def read_prefix(path: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular file (FIFOs and devices refused, never blocking).

    Parameters
    ----------
    path : Path
        The file.
    limit : int
        Bytes to read at most.

    Returns
    -------
    bytes
        The prefix (shorter when the file is).

    Raises
    ------
    OSError
        Missing, not a regular file, or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "f").write_bytes(b"committed|uncommitted")
    >>> read_prefix(folder / "f", 9)
    b'committed'
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{path} is {fsguard.kind(info.st_mode)}")
        chunks = []
        offset = 0
        while offset < limit:
            chunk = os.pread(fd, min(limit - offset, 1 << 20), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_jsonl_prefix(path: Path, limit: int) -> tuple[list[dict[str, Any]], int]:
    r"""JSONL objects in the first ``limit`` bytes: (objects, invalid line count).

    Used for a file whose tail holds an uncommitted cycle (see
    :func:`tau_ops.state.committed_sizes`). Lines follow the one JSON policy
    (:func:`tau_ops.jsonio.parse_json`); blank lines are ignored.

    Parameters
    ----------
    path : Path
        A JSONL file (missing: no objects).
    limit : int
        The committed length in bytes.

    Returns
    -------
    tuple of (list of dict, int)
        The objects in file order and the count of invalid lines.

    Raises
    ------
    OSError
        Not a regular file, or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "l.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    >>> read_jsonl_prefix(folder / "l.jsonl", 9)
    ([{'a': 1}], 0)
    """
    try:
        data = read_prefix(path, limit)
    except FileNotFoundError:
        return [], 0
    records: list[dict[str, Any]] = []
    invalid = 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            value = jsonio.parse_json(raw)
        except ValueError:
            invalid += 1
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            invalid += 1
    return records, invalid
