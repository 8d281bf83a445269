"""Analysis sources: state dirs, events files and snapshot archives, and reading them by identity.

Sources are named by the text given (:func:`given_sources`); one source given
twice is refused, since the ``source`` column would merge it.

A ``tau-ops snapshot`` archive (``*.tar.gz``, ``*.tgz``) given where the
analysis takes a state dir is first verified as ``tau-ops snapshot --verify``
does (:func:`tau_ops.ops.snapshot.verify_snapshot`: member names, regular
files only, expansion bounds, every hash). Its state-level files
(``state.json``, the pause marker, the cycle journal and the event log with
its backups) are then copied, through the same safety rules
(:func:`tau_ops.ops.snapshot.safe_members`), into a private temporary folder
(mode 0700) that the readers use as a state dir and that is removed when the
read ends. The copy exists because duckdb reads files, not streams; nothing is
written beside the archive and no analysis cache is kept for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from tau_ops.analysis import _parse
from tau_ops.errors import InputError
from tau_ops.ops.snapshot import (
    INNER_MANIFEST,
    parse_inner,
    safe_members,
    verify_snapshot,
)
from tau_ops.readview import Pin, copy_prefix, fd_path, open_pinned, pin_files
from tau_ops.state import EVENTS_FILE, JOURNAL_FILE, PAUSE_FILE, STATE_FILE, committed_sizes
from tau_ops.storage import rotated_files

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
"""A source whose name ends so is read as a snapshot archive (unless it is a folder)."""
_STATE_MEMBERS = frozenset({STATE_FILE, PAUSE_FILE, JOURNAL_FILE, EVENTS_FILE})


def is_archive(path: str | Path) -> bool:
    """True when ``path`` names a snapshot archive (by its suffix) rather than a folder.

    Examples
    --------
    >>> is_archive("iad-snapshot-20260101T000000.000Z.tar.gz"), is_archive("iad/deployment")
    (True, False)
    """
    return str(path).endswith(ARCHIVE_SUFFIXES) and not Path(path).is_dir()


def _wanted(rel: str) -> bool:
    if rel in _STATE_MEMBERS:
        return True
    head, dot, tail = rel.rpartition(".")
    return head == EVENTS_FILE and bool(dot) and tail.isdigit() and int(tail) > 0


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        while source is not None:
            block = source.read(1 << 20)
            if not block:
                break
            digest.update(block)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return digest.hexdigest()


def _fill(archive: Path, folder: Path) -> None:
    """Copy the wanted members into ``folder``; each must hash as the verified manifest says."""
    problems: list[str] = []
    copied: dict[str, str] = {}
    listed: dict[str, str] | None = None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for rel, member in safe_members(tar, archive, problems):
                if rel == INNER_MANIFEST:
                    handle = tar.extractfile(member)
                    data = handle.read(member.size) if handle else b""
                    listed = {k: v.sha256 for k, v in parse_inner(data).items()}
                elif _wanted(rel):
                    copied[rel] = _copy(tar, member, folder / rel)
    except (tarfile.TarError, OSError, EOFError, ValueError, ValidationError) as exc:
        problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if listed is None or any(listed.get(rel) != sha for rel, sha in copied.items()):
        problems.append("its files differ from its manifest")
    if problems:
        raise InputError(f"snapshot archive {archive} changed since it was verified: "
                         + "; ".join(problems[:3]), path=archive)


@contextlib.contextmanager
def opened_archive(archive: Path | str) -> Iterator[Path]:
    """A private state dir holding a verified snapshot's state and event files.

    Parameters
    ----------
    archive : Path or str
        A ``tau-ops snapshot`` archive.

    Yields
    ------
    Path
        A temporary folder (mode 0700) with ``state.json``, the pause marker,
        the cycle journal and ``runtime-events.jsonl`` with its backups, as
        archived; removed on exit.

    Raises
    ------
    InputError
        The archive is missing, fails verification (corrupted, hostile member
        names, links or devices, a gzip bomb, a changed byte) or changed while
        being read (exit 2).

    Examples
    --------
    >>> with opened_archive("missing.tar.gz") as folder:
    ...     pass
    Traceback (most recent call last):
    ...
    tau_ops.errors.InputError: snapshot archive missing.tar.gz does not exist
    """
    archive = Path(archive)
    report = verify_snapshot(archive)
    if not report.ok:
        raise InputError(f"snapshot archive {archive} refused: it fails verification ("
                         + "; ".join(report.problems[:3])
                         + ("; ..." if len(report.problems) > 3 else "") + ")", path=archive)
    folder = Path(tempfile.mkdtemp(prefix="tau-ops-snapshot-"))
    try:
        _fill(archive, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def state_dir_of(source: Path | str) -> Iterator[Path]:
    """The state dir to read for ``source``: itself, or a verified archive's private copy.

    Examples
    --------
    >>> with state_dir_of("/srv/iad/deployment") as folder:
    ...     str(folder)
    '/srv/iad/deployment'
    """
    if is_archive(source):
        with opened_archive(source) as folder:
            yield folder
    else:
        yield Path(source)


@dataclass(frozen=True)
class SourceItem:
    """One analysis source as given: its name (the text given), path and kind.

    Examples
    --------
    >>> SourceItem("iad.tar.gz", Path("iad.tar.gz"), archive=True).name
    'iad.tar.gz'
    """

    name: str
    """The ``source`` column's value: the text given."""
    path: Path
    archive: bool
    """True for a snapshot archive (see :func:`is_archive`)."""


def given_sources(source: str | Path | Sequence[str | Path]) -> list[SourceItem]:
    """The sources as given, each named by its text; one source given twice is refused.

    Two entries with the same text, or naming the same event log (a state dir
    and its ``runtime-events.jsonl``, two spellings of one path), would merge
    in the ``source`` column, so they are refused.

    Parameters
    ----------
    source : str, Path or sequence of them
        State dirs, events files or snapshot archives.

    Returns
    -------
    list of SourceItem
        One per source, in the order given.

    Raises
    ------
    InputError
        A state dir or events file does not exist, or a source is given twice.

    Examples
    --------
    >>> given_sources(["/tmp", "/tmp/"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    tau_ops.errors.InputError: sources '/tmp' and '/tmp/' are the same source: ...
    """
    given = [source] if isinstance(source, str | Path) else list(source)
    items: list[SourceItem] = []
    seen: dict[str, str] = {}
    for raw in given:
        path, name = Path(raw), str(raw)
        archive = is_archive(path)
        if not archive and not path.exists() and not rotated_files(path):
            raise InputError(f"no such state dir or events file: {path}", path=path)
        log_file = path / EVENTS_FILE if path.is_dir() else path
        keys = [f"name:{name}", f"file:{os.path.realpath(log_file)}"]
        with contextlib.suppress(OSError):  # a hard link is the same file under another name
            info = os.stat(log_file)
            keys.append(f"inode:{info.st_dev}:{info.st_ino}")
        for key in keys:
            if key in seen:
                raise InputError(f"sources {seen[key]!r} and {name!r} are the same source: give "
                                 "each once (the source column would merge them)", path=path)
            seen[key] = name
        items.append(SourceItem(name, path, archive))
    return items


def pinned_batches(
    pins: list[Pin], relist: Callable[[], list[Path]], growing: Path | None, what: str,
    columns: list[str],
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Parsed batches of exactly the pinned bytes of each file, wherever a rotation moved it.

    A backup is parsed in place (by descriptor, so a rename cannot swap it);
    the file that may grow (``growing``) or one cut to its committed length is
    first copied up to its pinned length into a private temporary folder,
    removed once parsed.

    Parameters
    ----------
    pins : list of Pin
        The files, oldest first (:func:`tau_ops.readview.pin_files`).
    relist : callable
        Where the files may be now (the log's family after any rotation).
    growing : Path or None
        The active log, which a writer appends to.
    what : str
        What is read, for the error message.
    columns : list of str
        Columns to parse (names of :data:`tau_ops.analysis.EVENT_SCHEMA`).

    Yields
    ------
    tuple of (polars.DataFrame, int)
        A typed batch and the invalid lines it skipped.

    Raises
    ------
    StateError
        A pinned file was deleted or replaced since it was pinned.

    Examples
    --------
    >>> list(pinned_batches([], list, None, "nothing", ["timestamp"]))
    []
    """
    with tempfile.TemporaryDirectory(prefix="tau-ops-scan-") as scratch:
        for index, pin in enumerate(pins):
            with open_pinned(pin, relist, what=what) as fd:
                path = fd_path(fd) if pin.path != growing else None
                if path is None or os.fstat(fd).st_size != pin.limit:
                    path = Path(scratch) / f"{index}.jsonl"
                    copy_prefix(fd, pin.limit, path)
                try:
                    yield from _parse.iter_batches(path, columns=columns)
                finally:
                    if path.parent == Path(scratch):
                        path.unlink()


def archive_batches(archive: Path, columns: list[str]) -> Iterator[tuple[pl.DataFrame, int]]:
    """A snapshot archive's committed events as parsed batches, verified and copied now.

    Parameters
    ----------
    archive : Path
        A ``tau-ops snapshot`` archive.
    columns : list of str
        Columns to parse.

    Yields
    ------
    tuple of (polars.DataFrame, int)
        A typed batch and the invalid lines it skipped.

    Raises
    ------
    InputError
        The archive fails verification (see :func:`opened_archive`).

    Examples
    --------
    >>> next(archive_batches(Path("missing.tar.gz"), ["timestamp"]))
    Traceback (most recent call last):
    tau_ops.errors.InputError: snapshot archive missing.tar.gz does not exist
    """
    with opened_archive(archive) as folder:
        active = folder / EVENTS_FILE
        pins = pin_files(rotated_files(active), committed_sizes(folder))
        yield from pinned_batches(pins, list, None, f"snapshot {archive}", columns)
