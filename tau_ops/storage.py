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
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tau_ops.errors import StateError
from tau_ops.jsonio import LIMITS, JSONPolicyError, parse_json, read_bounded

log = logging.getLogger("tau_ops")

LOCK_NAME = ".tau-ops.lock"
DEFAULT_ROTATION_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ROTATION_MAX_FILES = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(value: str) -> str:
    """Turn input into one path component: only ``[A-Za-z0-9._-]``, never ``.``/``..``."""
    cleaned = _UNSAFE.sub("_", value)
    if cleaned in ("", ".", ".."):
        cleaned = cleaned.replace(".", "_") or "_"
    return cleaned


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def dumps_json(value: Any) -> str:
    """Stable pretty JSON used for every whole JSON file tau-ops writes."""
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, value: Any, *, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``value`` as pretty JSON."""
    atomic_write_text(path, dumps_json(value), mode=mode)


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``state_dir`` so concurrent writers serialize.

    The lock is an ``flock`` on a file inside the dir: the kernel drops it when
    the holder dies, so a killed runner never leaves a stale lock behind.
    """
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
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


def complete_lines_end(handle: BinaryIO, size: int) -> int:
    """Offset just past the last newline in the first ``size`` bytes (0 when there is none).

    The bytes after it, if any, are a line still being written or torn by a crash.
    """
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        handle.seek(start)
        block = handle.read(pos - start)
        idx = block.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


def repair_torn_tail(path: Path) -> int:
    """Cut a partial last line (no trailing newline) left by a killed writer.

    Returns the file size after the repair (0 when the file does not exist).
    """
    try:
        with open(path, "r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            keep = complete_lines_end(handle, size)
            if keep == size:
                return size
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
            log.warning("repaired torn last line of %s (%d bytes dropped)", path, size - keep)
            return keep
    except FileNotFoundError:
        return 0


def append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append JSONL lines with one write and an fsync; callers hold the state lock."""
    payload = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not payload:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = payload.encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_to(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (used to undo an unfinished append)."""
    try:
        with open(path, "r+b") as handle:
            if handle.seek(0, os.SEEK_END) > size:
                handle.truncate(size)
                os.fsync(handle.fileno())
    except FileNotFoundError:
        return


def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def rotation_limits() -> tuple[int, int]:
    """(max bytes, max files) from ``TAU_LOG_ROTATION_MAX_*``, invalid values -> defaults."""
    return (
        _positive_env("TAU_LOG_ROTATION_MAX_BYTES", DEFAULT_ROTATION_MAX_BYTES),
        _positive_env("TAU_LOG_ROTATION_MAX_FILES", DEFAULT_ROTATION_MAX_FILES),
    )


def rotate_if_needed(path: Path, incoming_bytes: int) -> bool:
    """Shift backups up by one when appending ``incoming_bytes`` would exceed the limit.

    ``path.1`` is the newest backup; at most ``max_files`` files exist in all,
    the active one included. Returns True when a rotation happened.
    """
    max_bytes, max_files = rotation_limits()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0 or size + incoming_bytes <= max_bytes:
        return False
    backups = max_files - 1
    if backups <= 0:
        path.unlink()
        _fsync_dir(path.parent)
        return True
    oldest = path.with_name(f"{path.name}.{backups}")
    with contextlib.suppress(FileNotFoundError):
        oldest.unlink()
    for index in range(backups - 1, 0, -1):
        src = path.with_name(f"{path.name}.{index}")
        if src.exists():
            os.replace(src, path.with_name(f"{path.name}.{index + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))
    _fsync_dir(path.parent)
    return True


def rotated_files(path: Path) -> list[Path]:
    """The backups of ``path`` oldest first, then ``path`` itself, those that exist."""
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


def read_jsonl_values(path: Path) -> tuple[list[Any], int]:
    """Parse a JSONL file under the JSON policy: (values, invalid line count).

    Every non-blank line goes through :func:`tau_ops.jsonio.parse_json`, so a
    line too deep, with a duplicate key, NaN or a lone surrogate is an invalid
    line, never an exception. Blank lines (JSON whitespace only) are skipped.

    Parameters
    ----------
    path : Path
        A JSONL file of at most ``LIMITS["jsonl_file"]`` bytes.

    Returns
    -------
    tuple of (list, int)
        The parsed values in file order, and the count of lines that broke
        the policy. A missing file gives ``([], 0)``.

    Raises
    ------
    OSError
        Not a regular file (a FIFO, a device), over the size limit, or unreadable.
    """
    try:
        data = read_bounded(path, max_bytes=LIMITS["jsonl_file"], what="JSONL file")
    except FileNotFoundError:
        return [], 0
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
    """Parse a JSONL file: (objects, invalid line count); see :func:`read_jsonl_values`.

    A line that is valid JSON but not an object counts as invalid.
    """
    values, invalid = read_jsonl_values(path)
    records = [value for value in values if isinstance(value, dict)]
    return records, invalid + len(values) - len(records)
