"""Snapshot archives as analysis sources, read without extracting them for the user.

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
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from tau_ops.errors import InputError
from tau_ops.ops.snapshot import (
    INNER_MANIFEST,
    parse_inner,
    safe_members,
    verify_snapshot,
)
from tau_ops.state import EVENTS_FILE, JOURNAL_FILE, PAUSE_FILE, STATE_FILE

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
