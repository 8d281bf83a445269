"""Consistent reads of files writers replace or rotate underneath a reader.

A reader of ``runtime-events.jsonl`` and its backups can overlap a rotation
(every backup renamed) or a commit (``state.json`` replaced). Readers take a
:func:`fingerprint` of the files before and after reading and retry through
:func:`read_consistently`, so they see one consistent set or say they could not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Pin:
    """A file of a consistent view, by identity: what a later (lazy) read must see.

    A rotation renames files but never changes an inode's bytes below
    ``limit``, so a pinned file is read wherever the rotation moved it.

    Parameters
    ----------
    path : Path
        Where the file was when the view was taken.
    dev : int
        Its device number (``st_dev``).
    ino : int
        Its inode number (``st_ino``).
    limit : int
        Bytes of the file that belong to the view (committed cycles only).

    Examples
    --------
    >>> Pin(Path("runtime-events.jsonl"), 1, 2, 0).limit
    0
    """

    path: Path
    """Where the file was when the view was taken."""
    dev: int
    ino: int
    limit: int
    """Bytes of the file that belong to the view (committed cycles only)."""


def pin_files(files: list[Path], limits: dict[Path, int]) -> list[Pin]:
    """Pin ``files`` by identity; call it inside :func:`read_consistently` for one view.

    Parameters
    ----------
    files : list of Path
        The files of the view, in reading order.
    limits : dict of Path to int
        Byte length of a file that belongs to the view when shorter than the
        file (:func:`tau_ops.state.committed_sizes`), bytes.

    Returns
    -------
    list of Pin
        One per file, in order.

    Raises
    ------
    OSError
        A file vanished or cannot be examined (a retry of the view settles it).

    Examples
    --------
    >>> pin_files([], {})
    []
    """
    pins = []
    for path in files:
        info = os.stat(path)
        pins.append(Pin(path, info.st_dev, info.st_ino,
                        min(limits.get(path, info.st_size), info.st_size)))
    return pins


@contextlib.contextmanager
def open_pinned(pin: Pin, relist: Callable[[], list[Path]], *, what: str) -> Iterator[int]:
    """A read-only descriptor of the pinned file, wherever a rotation has moved it.

    Parameters
    ----------
    pin : Pin
        The file, from :func:`pin_files`.
    relist : callable
        The files where it may be now (its family, after any rotation).
    what : str
        What is read, for the error message.

    Yields
    ------
    int
        A descriptor of the same file (device and inode), at least ``pin.limit`` bytes long.

    Raises
    ------
    StateError
        The file was deleted (rotated out of the backups) or cut since it was pinned.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = path.write_bytes(b"{}\\n")
    >>> pin = pin_files([path], {})[0]
    >>> with open_pinned(pin, lambda: [path], what="events") as fd:
    ...     os.pread(fd, pin.limit, 0)
    b'{}\\n'
    """
    for path in dict.fromkeys([pin.path, *relist()]):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            continue
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) == (pin.dev, pin.ino) and stat.S_ISREG(info.st_mode):
            if info.st_size < pin.limit:
                os.close(fd)
                break
            try:
                yield fd
            finally:
                os.close(fd)
            return
        os.close(fd)
    raise StateError(f"{what}: {pin.path} was rotated away or replaced since the view was "
                     "taken; run the query again")


def fd_path(fd: int) -> Path | None:
    """A path that opens exactly the file behind ``fd`` (Linux ``/proc``), or None.

    Parameters
    ----------
    fd : int
        An open descriptor.

    Returns
    -------
    Path or None
        ``/proc/self/fd/<fd>`` where ``/proc`` exists, else None (the caller
        then copies the bytes it needs, see :func:`copy_prefix`).

    Examples
    --------
    >>> fd_path(0) in (Path("/proc/self/fd/0"), None)
    True
    """
    path = Path(f"/proc/self/fd/{fd}")
    return path if path.exists() else None


def copy_prefix(fd: int, limit: int, target: Path) -> None:
    """Copy the first ``limit`` bytes of ``fd`` to a new private file ``target`` (in chunks).

    Parameters
    ----------
    fd : int
        A readable descriptor (read with ``pread``; its offset is not moved).
    limit : int
        Most bytes copied (1 MiB chunks); fewer when the file is shorter.
    target : Path
        A new file, created with mode 0600; it must not exist.

    Raises
    ------
    OSError
        ``target`` exists, or a read or write failed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a").write_bytes(b"abcdef")
    >>> fd = os.open(folder / "a", os.O_RDONLY)
    >>> copy_prefix(fd, 3, folder / "b"); os.close(fd)
    >>> (folder / "b").read_bytes()
    b'abc'
    """
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                  0o600)
    try:
        offset = 0
        while offset < limit:
            chunk = os.pread(fd, min(limit - offset, 1 << 20), offset)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
            offset += len(chunk)
    finally:
        os.close(out)


def state_view_files(state_dir: Path | str) -> list[Path]:
    """The files whose change moves a state dir's view: state, journal, event log and backups.

    Every commit replaces ``state.json``, a killed cycle leaves the journal and
    a rotation renames the event files, so readers fingerprint these (see
    :func:`read_state_view`).

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir (it need not exist).

    Returns
    -------
    list of Path
        ``state.json``, ``.cycle-journal.json``, then ``runtime-events.jsonl``
        and its rotated backups that exist, newest first.

    Examples
    --------
    >>> [p.name for p in state_view_files("/nonexistent")]
    ['state.json', '.cycle-journal.json']
    """
    from tau_ops.state import StatePaths
    from tau_ops.storage import rotated_files

    paths = StatePaths(Path(state_dir))
    return [paths.state, paths.journal, *rotated_files(paths.events)]


def read_state_view(state_dir: Path | str, read: Callable[[], T], *, what: str) -> T:
    """Run ``read`` (which reads anything in ``state_dir``) on one consistent view of it.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.
    read : callable
        Reads the state dir; retried when a commit or rotation overlapped it.
    what : str
        What is read, for the error message.

    Returns
    -------
    T
        What ``read`` returned during a read no writer overlapped.

    Raises
    ------
    StateError
        The state dir kept changing during every attempt.

    Examples
    --------
    >>> read_state_view("/nonexistent", lambda: "read", what="nothing")
    'read'
    """
    return read_consistently(lambda: state_view_files(state_dir), lambda _files: read(),
                             what=what)


def read_committed_jsonl(
    path: Path, committed: dict[Path, int]
) -> tuple[list[dict[str, Any]], int]:
    """JSON objects of a JSONL file up to its committed length: (objects, invalid lines).

    Parameters
    ----------
    path : Path
        A JSONL file a cycle appends to (event log, channel-store ``log.jsonl``).
    committed : dict of Path to int
        :func:`tau_ops.state.committed_sizes` of its state dir: a file named
        there is read only up to that many bytes.

    Returns
    -------
    tuple of (list of dict, int)
        The objects in file order and the count of invalid lines (a missing
        file gives ``([], 0)``).

    Raises
    ------
    OSError
        Not a regular file, over the size limit, or unreadable.

    Examples
    --------
    >>> read_committed_jsonl(Path("/nonexistent/log.jsonl"), {})
    ([], 0)
    """
    from tau_ops.storage import read_jsonl_values

    values, invalid = read_jsonl_values(path, committed.get(path))
    records = [value for value in values if isinstance(value, dict)]
    return records, invalid + len(values) - len(records)
