"""Durable files: atomic writes, the state-dir lock, JSONL appends and rotation.

Every whole-file write goes through :func:`atomic_write_bytes` (temp file in the
same folder, fsync, rename, fsync the folder), so a reader or a crash never
sees half a file. Appends repair a torn last line left by a killed writer
before adding their own, so JSONL files stay parseable line by line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tau_ops import fsguard
from tau_ops.errors import StateError
from tau_ops.jsonio import LIMITS, JSONPolicyError, parse_json, read_bounded

log = logging.getLogger("tau_ops")

LOCK_NAME = ".tau-ops.lock"
DEFAULT_ROTATION_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ROTATION_MAX_FILES = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(value: str) -> str:
    """Turn input into one path component: only ``[A-Za-z0-9._-]``, never ``.``/``..``.

    Parameters
    ----------
    value : str
        Any text (a blueprint id, a case id).

    Returns
    -------
    str
        ``value`` with every other character replaced by ``_``; ``_`` for an empty value.

    Examples
    --------
    >>> safe_component("edge/wasm v2"), safe_component("..")
    ('edge_wasm_v2', '__')
    """
    cleaned = _UNSAFE.sub("_", value)
    if cleaned in ("", ".", ".."):
        cleaned = cleaned.replace(".", "_") or "_"
    return cleaned


def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        _fsync_fd(fd)
    finally:
        os.close(fd)


def containment_root(path: Path) -> Path | None:
    """The state dir ``path`` lies in: the nearest folder above it holding the lock file.

    Writers that know their state dir pass it as ``root=``; this is the fallback
    for callers (the packager) that only know a path. None: no state dir above.

    Parameters
    ----------
    path : Path
        A path inside (or outside) a state dir.

    Returns
    -------
    Path or None
        The folder holding ``.tau-ops.lock``, or None.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with state_lock(folder):
    ...     containment_root(folder / "channel-store" / "log.jsonl") == folder
    True
    """
    folder = Path(os.path.abspath(path)).parent
    for candidate in (folder, *folder.parents):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(candidate / LOCK_NAME).st_mode):
                return candidate
    return None


def refuse_links_below(root: Path, path: Path) -> None:
    """Refuse a folder path whose existing components below ``root`` are not real folders.

    For writers that create folders (``mkdir -p``) inside a state dir before
    any lock file marks it: a planted link must not carry them outside.

    Parameters
    ----------
    root : Path
        The state dir.
    path : Path
        A folder path below ``root``.

    Raises
    ------
    StateError
        A component below ``root`` is a symbolic link or not a directory.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "out").symlink_to("/tmp")
    >>> refuse_links_below(folder, folder / "out" / "x")
    Traceback (most recent call last):
    ...
    tau_ops.errors.StateError: refusing to write ...out: it is a symbolic link, not a directory ...
    """
    base = Path(os.path.abspath(root))
    current = base
    for part in Path(os.path.abspath(path)).relative_to(base).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            raise fsguard.refuse(current, mode, "a directory")


def _root(path: Path, root: Path | None) -> Path | None:
    return root if root is not None else containment_root(path)


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int = 0o644, root: Path | None = None
) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole.

    Parameters
    ----------
    path : Path
        The file to replace; missing folders are created.
    data : bytes
        The new content.
    mode : int
        Permission bits of the new file (default ``0o644``).
    root : Path, optional
        The state dir: no folder below it, and not ``path`` itself, may be a
        symlink or special file (default: found by :func:`containment_root`;
        outside any state dir an existing link at ``path`` is replaced, not followed).

    Raises
    ------
    StateError
        A link or special file inside the state dir is in the way.
    OSError
        The write failed (disk full, permissions).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(folder / "a" / "f.bin", b"new")
    >>> (folder / "a" / "f.bin").read_bytes()
    b'new'
    """
    contained = _root(path, root)
    with fsguard.parent_dir(path, contained, create=True) as (dfd, name):
        existing = fsguard.lstat_in(dfd, name) if contained is not None else None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise fsguard.refuse(path, existing.st_mode)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | fsguard.FILE_NOFOLLOW,
                     0o600, dir_fd=dfd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        _fsync_fd(dfd)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644,
                      root: Path | None = None) -> None:
    """Atomically replace ``path`` with UTF-8 ``text`` (see :func:`atomic_write_bytes`).

    Parameters
    ----------
    path : Path
        The file to replace.
    text : str
        The new content, written as UTF-8.
    mode : int
        Permission bits (default ``0o644``).
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Raises
    ------
    StateError
        A link or special file inside the state dir is in the way.
    OSError
        The write failed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "MEMORY.md", "# edge")
    >>> (folder / "MEMORY.md").read_text()
    '# edge'
    """
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode, root=root)


def dumps_json(value: Any) -> str:
    r"""Stable pretty JSON used for every whole JSON file tau-ops writes.

    Parameters
    ----------
    value : Any
        A JSON-serializable value.

    Returns
    -------
    str
        Indented by 2, keys in insertion order, non-ASCII kept, final newline.

    Examples
    --------
    >>> dumps_json({"b": 1, "a": "é"})
    '{\n  "b": 1,\n  "a": "é"\n}\n'
    """
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, value: Any, *, mode: int = 0o644,
                      root: Path | None = None) -> None:
    r"""Atomically replace ``path`` with ``value`` as pretty JSON (see atomic_write_bytes).

    Parameters
    ----------
    path : Path
        The file to replace.
    value : Any
        A JSON-serializable value (written with :func:`dumps_json`).
    mode : int
        Permission bits (default ``0o644``).
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Raises
    ------
    StateError
        A link or special file inside the state dir is in the way.
    OSError
        The write failed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_json(folder / "x.json", {"ok": True})
    >>> (folder / "x.json").read_text()
    '{\n  "ok": true\n}\n'
    """
    atomic_write_text(path, dumps_json(value), mode=mode, root=root)


def unlink(path: Path, *, root: Path | None = None) -> bool:
    """Remove ``path`` (a link is removed, never followed); False when it was not there.

    Parameters
    ----------
    path : Path
        The file to remove.
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Returns
    -------
    bool
        True when a file was removed.

    Raises
    ------
    StateError
        A folder below ``root`` is a symlink.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "f").write_text("x")
    >>> unlink(folder / "f"), unlink(folder / "f")
    (True, False)
    """
    try:
        with fsguard.parent_dir(path, _root(path, root)) as (dfd, name):
            os.unlink(name, dir_fd=dfd)
            _fsync_fd(dfd)
            return True
    except FileNotFoundError:
        return False


def move_aside(path: Path, tag: str, *, root: Path | None = None) -> Path:
    """Rename ``path`` to ``<name>.<tag>`` (``-2``, ``-3``... if taken), never replacing a file.

    Used for quarantine: two corrupt files set aside in the same millisecond
    keep both.

    Parameters
    ----------
    path : Path
        The file to set aside.
    tag : str
        The suffix (``corrupt-<unix ms>``).
    root : Path, optional
        The state dir: no folder below it may be a symlink (default: found by
        :func:`containment_root`).

    Returns
    -------
    Path
        The new path.

    Raises
    ------
    StateError
        A folder below ``root`` is a symlink.
    OSError
        The rename failed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for _ in range(2):
    ...     _ = (d / "s").write_text("x")
    ...     print(move_aside(d / "s", "corrupt-1").name)
    s.corrupt-1
    s.corrupt-1-2
    """
    with fsguard.parent_dir(path, _root(path, root)) as (dfd, name):
        number = 1
        while True:
            aside = f"{name}.{tag}" if number == 1 else f"{name}.{tag}-{number}"
            number += 1
            try:  # link + unlink: unlike rename, a link never replaces an existing name
                os.link(name, aside, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                if fsguard.lstat_in(dfd, aside) is not None:  # no hard links here:
                    continue  # callers hold the state lock, so check-then-rename is safe
                os.rename(name, aside, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)
            _fsync_fd(dfd)
            return path.with_name(aside)


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``state_dir`` so concurrent writers serialize.

    The lock is an ``flock`` on a file inside the dir: the kernel drops it when
    the holder dies, so a killed runner never leaves a stale lock behind.

    Parameters
    ----------
    state_dir : Path
        The state dir; created when missing.

    Yields
    ------
    None
        While the lock is held.

    Raises
    ------
    StateError
        The dir cannot be created or the lock file opened (named in the message).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with state_lock(folder / "state"):
    ...     (folder / "state" / ".tau-ops.lock").is_file()
    True
    """
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with fsguard.parent_dir(state_dir / LOCK_NAME, state_dir) as (dfd, name):
            fd = fsguard.open_regular(dfd, name, state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise StateError(
            f"cannot lock state dir {state_dir}: {exc.strerror}", path=state_dir
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def shared_lock(state_dir: Path) -> Iterator[bool]:
    """Hold a shared lock for a reader that needs no writer to commit meanwhile.

    Needs no write access: an existing lock file is opened read-only, and a
    missing or unopenable one is not created; then the reader runs unlocked
    and this yields False (True when the lock is held). Waits for a writer
    holding :func:`state_lock` to finish.

    Parameters
    ----------
    state_dir : Path
        The state dir (only read).

    Yields
    ------
    bool
        Whether the shared lock is held.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with shared_lock(folder) as held:
    ...     held
    False
    """
    try:
        with fsguard.parent_dir(state_dir / LOCK_NAME, state_dir) as (dfd, name):
            fd = fsguard.open_regular(dfd, name, state_dir / LOCK_NAME, os.O_RDONLY)
    except (OSError, StateError):
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield True
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _complete_end(fd: int, size: int) -> int:
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        block = os.pread(fd, pos - start, start)
        idx = block.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


def complete_lines_end(handle: BinaryIO, size: int) -> int:
    r"""Offset just past the last newline in the first ``size`` bytes (0 when there is none).

    The bytes after it, if any, are a line still being written or torn by a crash.

    Parameters
    ----------
    handle : BinaryIO
        A file opened for binary reading (seekable).
    size : int
        How many bytes of it to consider.

    Returns
    -------
    int
        A byte offset, at most ``size``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryFile() as handle:
    ...     _ = handle.write(b'{"a":1}\n{"b"')
    ...     handle.flush()
    ...     complete_lines_end(handle, 12)
    8
    """
    return _complete_end(handle.fileno(), size)


def _repair_fd(fd: int, path: Path) -> int:
    size = os.fstat(fd).st_size
    keep = _complete_end(fd, size)
    if keep != size:
        os.ftruncate(fd, keep)
        os.fsync(fd)
        log.warning("repaired torn last line of %s (%d bytes dropped)", path, size - keep)
    return keep


@contextlib.contextmanager
def _open_log(path: Path, root: Path | None, *, create: bool) -> Iterator[int]:
    with fsguard.parent_dir(path, _root(path, root), create=create) as (dfd, name):
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        fd = fsguard.open_regular(dfd, name, path, flags)
        try:
            yield fd
        finally:
            os.close(fd)


def repair_torn_tail(path: Path, *, root: Path | None = None) -> int:
    r"""Cut a partial last line (no trailing newline) left by a killed writer.

    Parameters
    ----------
    path : Path
        A JSONL file.
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Returns
    -------
    int
        The file size after the repair, in bytes (0 when the file does not exist).

    Raises
    ------
    StateError
        ``path`` is a link or special file.
    OSError
        The file cannot be read or cut.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "log.jsonl").write_bytes(b'{"a":1}\n{"b"')
    >>> repair_torn_tail(folder / "log.jsonl")
    8
    """
    try:
        with _open_log(path, root, create=False) as fd:
            return _repair_fd(fd, path)
    except FileNotFoundError:
        return 0


def append_lines(path: Path, lines: Iterable[str], *, root: Path | None = None) -> None:
    """Append JSONL lines with one write and an fsync; callers hold the state lock.

    A torn last line is cut first.

    Parameters
    ----------
    path : Path
        The JSONL file (created when missing).
    lines : iterable of str
        Lines without their newline.
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Raises
    ------
    StateError
        ``path`` or a folder below ``root`` is a link or special file.
    OSError
        The write failed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> append_lines(folder / "log.jsonl", ['{"a":1}', '{"b":2}'])
    >>> (folder / "log.jsonl").read_text().splitlines()
    ['{"a":1}', '{"b":2}']
    """
    payload = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not payload:
        return
    with _open_log(path, root, create=True) as fd:
        _repair_fd(fd, path)
        view = memoryview(payload.encode("utf-8"))
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)


def truncate_to(path: Path, size: int, *, root: Path | None = None) -> None:
    """Cut ``path`` back to ``size`` bytes (used to undo an unfinished append).

    A file that is missing, or whose name the file system cannot hold, had
    nothing appended, so there is nothing to undo.

    Parameters
    ----------
    path : Path
        The file.
    size : int
        Its length before the append, in bytes.
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Raises
    ------
    StateError
        ``path`` or a folder below ``root`` is a link or special file.
    OSError
        The file cannot be cut (permissions).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "log.jsonl").write_bytes(b"12345")
    >>> truncate_to(folder / "log.jsonl", 2)
    >>> (folder / "log.jsonl").read_bytes()
    b'12'
    """
    try:
        with _open_log(path, root, create=False) as fd:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
                os.fsync(fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise


ROTATION_MAX_BYTES_RANGE = (1, 1024 * 1024 * 1024)
ROTATION_MAX_FILES_RANGE = (1, 100)


def _ranged_env(name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    if value <= 0:
        return default
    low, high = bounds
    if not low <= value <= high:
        clamped = min(max(value, low), high)
        log.warning("%s=%d is outside %d..%d; using %d", name, value, low, high, clamped)
        return clamped
    return value


def rotation_limits() -> tuple[int, int]:
    """(max bytes, max files) from ``TAU_LOG_ROTATION_MAX_*``.

    Garbage or non-positive values fall back to the defaults (SPEC); values
    above :data:`ROTATION_MAX_BYTES_RANGE` / :data:`ROTATION_MAX_FILES_RANGE`
    are clamped to the range's top, with a warning.

    Returns
    -------
    tuple of (int, int)
        Largest active file in bytes (default 10 MiB, ``TAU_LOG_ROTATION_MAX_BYTES``)
        and files kept in all, the active one included (default 5,
        ``TAU_LOG_ROTATION_MAX_FILES``).

    Examples
    --------
    >>> import os
    >>> os.environ.pop("TAU_LOG_ROTATION_MAX_BYTES", None) and None
    >>> os.environ.pop("TAU_LOG_ROTATION_MAX_FILES", None) and None
    >>> rotation_limits()
    (10485760, 5)
    """
    return (
        _ranged_env("TAU_LOG_ROTATION_MAX_BYTES", DEFAULT_ROTATION_MAX_BYTES,
                    ROTATION_MAX_BYTES_RANGE),
        _ranged_env("TAU_LOG_ROTATION_MAX_FILES", DEFAULT_ROTATION_MAX_FILES,
                    ROTATION_MAX_FILES_RANGE),
    )


def _backup_indices(dfd: int, name: str) -> list[int]:
    prefix = name + "."
    found = []
    with os.scandir(dfd) as entries:
        for entry in entries:
            suffix = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) > 0 and str(int(suffix)) == suffix:
                found.append(int(suffix))
    return sorted(found, reverse=True)


def rotate_if_needed(path: Path, incoming_bytes: int, *, root: Path | None = None) -> bool:
    r"""Shift backups up by one when appending ``incoming_bytes`` would exceed the limit.

    ``path.1`` is the newest backup; at most ``max_files`` files exist in all,
    the active one included. Only existing backups are touched, so the cost
    does not depend on the configured maximum.

    Parameters
    ----------
    path : Path
        The active log file.
    incoming_bytes : int
        Size of the append about to happen, in bytes.
    root : Path, optional
        The state dir: no folder below it may be a symlink or special file
        (default: found by :func:`containment_root`).

    Returns
    -------
    bool
        True when a rotation happened.

    Raises
    ------
    StateError
        ``path`` is a link or special file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "log.jsonl").write_text("x\n")
    >>> rotate_if_needed(folder / "log.jsonl", 10)
    False
    """
    max_bytes, max_files = rotation_limits()
    try:
        with fsguard.parent_dir(path, _root(path, root)) as (dfd, name):
            info = fsguard.lstat_in(dfd, name)
            if info is None:
                return False
            if not stat.S_ISREG(info.st_mode):
                raise fsguard.refuse(path, info.st_mode)
            if info.st_size == 0 or info.st_size + incoming_bytes <= max_bytes:
                return False
            backups = max_files - 1
            for index in _backup_indices(dfd, name):
                old = f"{name}.{index}"
                if index >= backups:
                    os.unlink(old, dir_fd=dfd)
                else:
                    os.replace(old, f"{name}.{index + 1}", src_dir_fd=dfd, dst_dir_fd=dfd)
            if backups <= 0:
                os.unlink(name, dir_fd=dfd)
            else:
                os.replace(name, f"{name}.1", src_dir_fd=dfd, dst_dir_fd=dfd)
            _fsync_fd(dfd)
            return True
    except FileNotFoundError:
        return False


def rotated_files(path: Path) -> list[Path]:
    """The backups of ``path`` oldest first, then ``path`` itself, those that exist.

    Parameters
    ----------
    path : Path
        The active log file.

    Returns
    -------
    list of Path
        ``path.N`` ... ``path.1`` then ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("log.jsonl", "log.jsonl.1", "log.jsonl.2"):
    ...     _ = (folder / name).write_text("")
    >>> [p.name for p in rotated_files(folder / "log.jsonl")]
    ['log.jsonl.2', 'log.jsonl.1', 'log.jsonl']
    """
    backups: list[tuple[int, Path]] = []
    prefix = path.name + "."
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            suffix = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) > 0:
                backups.append((int(suffix), entry))
    ordered = [p for _, p in sorted(backups, key=lambda item: item[0], reverse=True)]
    if path.exists():
        ordered.append(path)
    return ordered


def open_regular_for_read(path: Path) -> BinaryIO:
    """Open a file for reading without blocking on a FIFO; non-regular files are refused.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    BinaryIO
        An open binary handle (the caller closes it).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    OSError
        It is a FIFO, device, socket or directory (the message says which).

    Examples
    --------
    >>> open_regular_for_read(Path("/dev/null"))
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] /dev/null is a character device, not a regular file
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is {fsguard.kind(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def read_jsonl_values(path: Path, limit: int | None = None) -> tuple[list[Any], int]:
    r"""Parse a JSONL file under the JSON policy: (values, invalid line count).

    Every non-blank line goes through :func:`tau_ops.jsonio.parse_json`, so a
    line too deep, with a duplicate key, NaN or a lone surrogate is an invalid
    line, never an exception. Blank lines (JSON whitespace only) are skipped.

    Parameters
    ----------
    path : Path
        A JSONL file of at most ``LIMITS["jsonl_file"]`` bytes.
    limit : int, optional
        Read only the first ``limit`` bytes (bytes past a committed cycle are
        not the file's yet: :func:`tau_ops.state.committed_sizes`).

    Returns
    -------
    tuple of (list, int)
        The parsed values in file order, and the count of lines that broke
        the policy. A missing file gives ``([], 0)``.

    Raises
    ------
    OSError
        Not a regular file (a FIFO, a device), over the size limit, or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "l.jsonl").write_text('{"a": 1}\n[2]\n{"a": 1, "a": 2}\n')
    >>> read_jsonl_values(folder / "l.jsonl")
    ([{'a': 1}, [2]], 1)
    """
    try:
        data = read_bounded(path, max_bytes=LIMITS["jsonl_file"], what="JSONL file")
    except FileNotFoundError:
        return [], 0
    if limit is not None:
        data = data[:limit]
    values: list[Any] = []
    invalid = 0
    for raw in data.split(b"\n"):
        if not raw.strip(b" \t\r\n"):
            continue
        try:
            values.append(parse_json(raw))
        except JSONPolicyError:
            invalid += 1
    return values, invalid


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    r"""Parse a JSONL file: (objects, invalid line count); see :func:`read_jsonl_values`.

    A line that is valid JSON but not an object counts as invalid.

    Parameters
    ----------
    path : Path
        A JSONL file.

    Returns
    -------
    tuple of (list of dict, int)
        The objects in file order and the count of invalid lines.

    Raises
    ------
    OSError
        Not a regular file, over the size limit, or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "l.jsonl").write_text('{"a": 1}\n[2]\n{"a": NaN}\n')
    >>> read_jsonl(folder / "l.jsonl")
    ([{'a': 1}], 2)
    """
    values, invalid = read_jsonl_values(path)
    records = [value for value in values if isinstance(value, dict)]
    return records, invalid + len(values) - len(records)
