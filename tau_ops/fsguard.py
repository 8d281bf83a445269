"""Containment: open folders and files below a state dir without following links.

Every write, append, rename and unlink of :mod:`tau_ops.storage` resolves its
target here. The state dir itself (the *root*) may be a symlink; below it each
folder is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, so a
symlink planted anywhere inside the state dir (a channel folder, an events
file) is refused instead of being written through. Files are opened with
``O_NONBLOCK`` and checked with ``fstat``, so a FIFO or device is refused
without ever blocking a writer that holds the state lock.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with parent_dir(root / "a" / "f.txt", root, create=True) as (fd, name):
...     name
'f.txt'
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from tau_ops.errors import StateError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
FILE_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC


def kind(mode: int) -> str:
    """A file type in words ("symbolic link", "FIFO", ...) for error messages."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def refuse(path: Path, mode: int, wanted: str = "a regular file") -> StateError:
    """The error for a path inside the state dir that is not what a writer needs."""
    return StateError(
        f"refusing to write {path}: it is {kind(mode)}, not {wanted} "
        "(tau-ops never writes through links or special files inside the state dir)",
        path=path,
    )


def _split(path: Path, root: Path | None) -> tuple[Path, tuple[str, ...], str]:
    """(root, folder names below it, file name), lexically; refuses paths outside root."""
    target = Path(os.path.abspath(path))
    base = Path(os.path.abspath(root)) if root is not None else target.parent
    try:
        rel = target.relative_to(base)
    except ValueError:
        raise StateError(f"refusing to write {path}: it is outside {root}", path=path) from None
    if not rel.parts:
        raise StateError(f"refusing to write {path}: it is the state dir itself", path=path)
    return base, rel.parts[:-1], rel.parts[-1]


def _open_child_dir(fd: int, name: str, shown: Path, *, create: bool) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=fd)
        return _open_child_dir(fd, name, shown, create=False)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            raise refuse(shown, info.st_mode, "a directory") from exc
        raise


@contextlib.contextmanager
def parent_dir(path: Path, root: Path | None, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """Yield (descriptor of ``path``'s folder, ``path``'s file name), links below root refused.

    Parameters
    ----------
    path : Path
        A file below ``root``.
    root : Path or None
        The containment root (the state dir); it may itself be a symlink.
        None: only ``path``'s own folder is trusted (its name is still checked).
    create : bool
        Create missing folders below ``root`` (mode 0755).

    Raises
    ------
    StateError
        A folder below ``root`` is a symlink or not a directory, or ``path`` is outside root.
    FileNotFoundError
        A folder is missing and ``create`` is False (or the root is missing).
    """
    base, folders, name = _split(path, root)
    if create:
        base.mkdir(parents=True, exist_ok=True)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        shown = base
        for folder in folders:
            shown = shown / folder
            child = _open_child_dir(fd, folder, shown, create=create)
            os.close(fd)
            fd = child
        try:
            yield fd, name
        except OSError as exc:
            # Calls made relative to the folder's descriptor name only the file; an operator
            # needs the whole path (the CLI prints ``exc.filename``).
            if isinstance(exc.filename, str) and os.sep not in exc.filename:
                exc.filename = str(shown / exc.filename)
            raise
    finally:
        os.close(fd)


def lstat_in(fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in folder ``fd``; None when it does not exist."""
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular(fd: int, name: str, shown: Path, flags: int, mode: int = 0o644) -> int:
    """Open ``name`` in folder ``fd`` without following a link or blocking; regular files only."""
    try:
        handle = os.open(name, flags | FILE_NOFOLLOW, mode, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR):
            info = lstat_in(fd, name)
            if info is not None:
                raise refuse(shown, info.st_mode) from exc
        raise
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode):
        os.close(handle)
        raise refuse(shown, info.st_mode)
    return handle
