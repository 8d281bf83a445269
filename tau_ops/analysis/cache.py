"""The incremental Parquet cache of parsed event logs, kept beside the log.

``<log folder>/.analysis-cache/`` holds, per log file, a small JSON entry and
Parquet segments of the lines already parsed. An entry is keyed by the file's
identity (device and inode, so a rotated backup keeps its entry when it is
renamed) and checked against a hash of the file's first bytes and of the bytes
just before the offset it covers; a log that grew is extended from that offset
with one new segment, a log that was truncated or replaced is rebuilt. Only
complete lines are cached: a torn last line is parsed afresh on every load.
The cache is never required: when the folder cannot be written, or an entry
or segment cannot be read, loads parse the JSONL and the results are the same.

Writing the cache is off the critical path of a load: :func:`tau_ops.analysis.load_events`
returns the parsed frame and a background thread (not a daemon, so the
interpreter waits for it at exit) writes the segments, then the entry, then
prunes. Each file is replaced atomically and the entry, which is what makes
a segment part of the cache, is written last, so a process killed mid-write
leaves at worst an unreferenced segment or temporary file, never an entry
naming bytes it does not hold. Every cache operation first waits for this
process's pending writes (:func:`wait_for_writes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ValidationError

from tau_ops.analysis import _parse
from tau_ops.storage import atomic_write_bytes, atomic_write_json, complete_lines_end

log = logging.getLogger("tau_ops")

CACHE_DIR = ".analysis-cache"
CACHE_VERSION = 2  # 2: lines checked by the one rule of tau_ops.events
HEAD_BYTES = 4096
CHECK_BYTES = 256
MAX_SEGMENTS = 8


class CacheSegment(BaseModel):
    """One Parquet file holding the events parsed from bytes ``[start, end)``."""

    file: str
    start: int
    end: int
    rows: int
    invalid: int


class CacheEntry(BaseModel):
    """What the cache knows about one log file (identity, covered bytes, segments)."""

    version: int = CACHE_VERSION
    family: str
    dev: int
    ino: int
    head_len: int
    head_sha256: str
    end: int
    check_sha256: str
    segments: list[CacheSegment]


@dataclass
class FileEvents:
    """One log file's events: cached Parquet segments plus frames parsed this time."""

    path: Path
    parquet: list[Path] = field(default_factory=list)
    frames: list[pl.DataFrame] = field(default_factory=list)
    invalid: int = 0
    parsed_bytes: int = 0


@dataclass(frozen=True)
class _Snapshot:
    dev: int
    ino: int
    size: int
    complete: int  # offset just after the last newline
    head: bytes


_pending: list[threading.Thread] = []
_pending_lock = threading.Lock()


def wait_for_writes() -> None:
    """Block until the cache writes this process started in the background are done.

    Loads and every :class:`EventCache` operation call it first; call it
    yourself before copying or inspecting ``.analysis-cache`` right after a load.

    Examples
    --------
    >>> wait_for_writes()  # nothing pending: returns at once
    """
    while True:
        with _pending_lock:
            if not _pending:
                return
            thread = _pending[0]
        thread.join()
        with _pending_lock:
            if thread in _pending:
                _pending.remove(thread)


def _in_background(jobs: list[Callable[[], object]]) -> None:
    def run() -> None:
        for job in jobs:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - the cache is optional; loads already returned
                log.debug("analysis cache write failed: %s", exc)

    thread = threading.Thread(target=run, name="tau-ops-analysis-cache", daemon=False)
    with _pending_lock:
        _pending.append(thread)
    thread.start()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snapshot(path: Path) -> _Snapshot:
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        head = handle.read(HEAD_BYTES)
        complete = complete_lines_end(handle, st.st_size)
    return _Snapshot(st.st_dev, st.st_ino, st.st_size, complete, head)


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(end - start)


def _unchanged(path: Path, snap: _Snapshot) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino, st.st_size) == (snap.dev, snap.ino, snap.size)


def _check(path: Path, end: int) -> str:
    return _sha(_read_range(path, max(0, end - CHECK_BYTES), end))


class EventCache:
    """The cache folder of one log family (``runtime-events.jsonl`` and its backups)."""

    def __init__(self, folder: Path, family: str, *, background: bool = False) -> None:
        self.folder = folder
        self.family = family
        self.background = background
        self._jobs: list[Callable[[], object]] = []

    def commit_in_background(self, keep: list[Path]) -> None:
        """Write what :meth:`sync` deferred, then :meth:`prune` to ``keep``, in a background thread.

        Parameters
        ----------
        keep : list of Path
            The log's files now (entries of other files are deleted).
        """
        jobs, self._jobs = [*self._jobs, lambda: self._prune(keep)], []
        _in_background(jobs)

    def _entry_path(self, snap: _Snapshot) -> Path:
        return self.folder / f"{self.family}.{snap.dev}-{snap.ino}.json"

    def _load_entry(self, path: Path, snap: _Snapshot) -> CacheEntry | None:
        try:
            entry = CacheEntry.model_validate_json(self._entry_path(snap).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError):
            log.info("analysis cache entry for %s is unreadable; rebuilding it", path)
            return None
        fits = (
            entry.version == CACHE_VERSION
            and entry.family == self.family
            and (entry.dev, entry.ino) == (snap.dev, snap.ino)
            and entry.end <= snap.complete
            and _sha(snap.head[: entry.head_len]) == entry.head_sha256
            and _check(path, entry.end) == entry.check_sha256
            and all(self._segment_ok(s) for s in entry.segments)
        )
        if not fits:
            log.info("analysis cache entry for %s does not match the file; rebuilding it", path)
            return None
        return entry

    def _segment_ok(self, segment: CacheSegment) -> bool:
        try:
            rows = pl.scan_parquet(self.folder / segment.file).select(pl.len()).collect().item()
            return bool(rows == segment.rows)
        except Exception:  # noqa: BLE001 - any unreadable segment means "rebuild"
            return False

    def _write_segment(self, name: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        _parse.to_stored(frame).write_parquet(buffer, compression="lz4", statistics=False)
        atomic_write_bytes(self.folder / name, buffer.getvalue())

    def sync(self, path: Path, *, writable: bool = True) -> FileEvents:
        """Bring ``path``'s entry up to date and return its events, parsing only new bytes.

        With ``background`` set, newly parsed bytes come back as frames and
        their segment is written by :meth:`commit_in_background`.
        """
        wait_for_writes()
        snap = _snapshot(path)
        result = FileEvents(path)
        entry = self._load_entry(path, snap)
        if entry is None:
            entry = CacheEntry(
                family=self.family, dev=snap.dev, ino=snap.ino,
                head_len=min(HEAD_BYTES, snap.complete),
                head_sha256=_sha(snap.head[: min(HEAD_BYTES, snap.complete)]),
                end=0, check_sha256=_sha(b""), segments=[],
            )
        start = entry.end
        if snap.complete > start:
            if start == 0 and snap.complete == snap.size:
                frame, invalid = _parse.parse_file(path)
            else:
                data = _read_range(path, start, snap.complete)
                frame, invalid = self._parse_slice(data, writable=writable)
            result.parsed_bytes += snap.complete - start
            segment = CacheSegment(
                file=f"{self.family}.{snap.dev}-{snap.ino}.{start}-{snap.complete}.parquet",
                start=start, end=snap.complete, rows=frame.height, invalid=invalid,
            )
            stored = False
            if writable and _unchanged(path, snap):  # what was parsed is what the entry names
                check = _check(path, snap.complete)
                pending = entry.model_copy(deep=True)
                if self.background:
                    self._jobs.append(
                        lambda: self._store(path, pending, segment, frame, snap, check))
                else:
                    stored = self._store(path, pending, segment, frame, snap, check)
                    entry = pending
            if not stored:
                result.frames.append(frame)
                result.invalid += invalid
                entry = entry.model_copy(update={"end": start})  # only older segments count
        result.parquet = [self.folder / s.file for s in entry.segments if s.end <= entry.end]
        result.invalid += sum(s.invalid for s in entry.segments if s.end <= entry.end)
        if snap.size > snap.complete:  # a torn or unterminated last line: never cached
            tail, invalid = self._parse_slice(
                _read_range(path, snap.complete, snap.size), writable=writable
            )
            result.parsed_bytes += snap.size - snap.complete
            result.frames.append(tail)
            result.invalid += invalid
        return result

    def _parse_slice(self, data: bytes, *, writable: bool) -> tuple[pl.DataFrame, int]:
        if writable:
            try:
                return _parse.parse_bytes(data, scratch_dir=self.folder)
            except OSError:
                pass
        return _parse.parse_bytes(data)

    def _store(
        self, path: Path, entry: CacheEntry, segment: CacheSegment, frame: pl.DataFrame,
        snap: _Snapshot, check: str,
    ) -> bool:
        """Add ``segment`` to the entry on disk (compacting when there are many)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            segments = [*entry.segments, segment]
            if len(segments) > MAX_SEGMENTS:
                stored = pl.scan_parquet([self.folder / s.file for s in entry.segments])
                merged = pl.concat([_parse.from_stored(stored).collect(), frame])
                segment = CacheSegment(
                    file=f"{self.family}.{snap.dev}-{snap.ino}.0-{snap.complete}.parquet",
                    start=0, end=snap.complete, rows=merged.height,
                    invalid=sum(s.invalid for s in segments),
                )
                self._write_segment(segment.file, merged)
                old = [s.file for s in entry.segments]
                segments = [segment]
            else:
                self._write_segment(segment.file, frame)
                old = []
            entry.segments = segments
            entry.end = snap.complete
            entry.check_sha256 = check
            atomic_write_json(self._entry_path(snap), entry.model_dump(mode="json"))
            for name in old:
                if name != segment.file:
                    with contextlib.suppress(OSError):
                        (self.folder / name).unlink()
            return True
        except OSError as exc:
            log.debug("analysis cache in %s not written: %s", self.folder, exc)
            return False

    def has_entry(self, path: Path) -> bool:
        """True when ``path`` has an entry (valid or not; :meth:`sync` checks it)."""
        wait_for_writes()
        st = path.stat()
        return (self.folder / f"{self.family}.{st.st_dev}-{st.st_ino}.json").exists()

    def drop(self, path: Path) -> None:
        """Forget ``path``'s entry (used when a segment fails to read)."""
        wait_for_writes()
        with contextlib.suppress(OSError):
            snap = _snapshot(path)
            self._entry_path(snap).unlink()

    def prune(self, keep: list[Path]) -> None:
        """Delete entries and segments of this family that belong to no file in ``keep``."""
        wait_for_writes()
        self._prune(keep)

    def _prune(self, keep: list[Path]) -> None:
        live: set[str] = set()
        for path in keep:
            with contextlib.suppress(OSError):
                st = path.stat()
                live.add(f"{self.family}.{st.st_dev}-{st.st_ino}.")
        referenced: set[str] = set()
        try:
            names = [p.name for p in self.folder.iterdir()]
        except OSError:
            return
        for name in names:
            if name.endswith(".json") and name.startswith(self.family + "."):
                try:
                    entry = CacheEntry.model_validate_json((self.folder / name).read_bytes())
                    referenced.update(s.file for s in entry.segments)
                except (OSError, ValidationError, ValueError):
                    pass
        for name in names:
            if not name.startswith(self.family + "."):
                continue
            stale_key = not any(name.startswith(prefix) for prefix in live)
            orphan = name.endswith(".parquet") and name not in referenced
            if stale_key or orphan:
                with contextlib.suppress(OSError):
                    (self.folder / name).unlink()
