"""Sources and destination of ``tau-ops export events``: partition names and write guards.

A source's name is its ``source=`` partition value, so two different names
must never become one folder and every name must read back as itself in
polars, duckdb and Spark. A name given as ``NAME=PATH`` is therefore limited
to ``[A-Za-z0-9._-]`` (not ``.``, ``..`` or Hive's null marker
``__HIVE_DEFAULT_PARTITION__``); a name derived from a path escapes every
other byte as ``_XX`` (upper-case hex of its UTF-8 bytes, ``_`` itself
included), which no two paths share. One source given twice (two spellings of
one path, a state dir and its log) is refused by file identity, as
:func:`tau_ops.analysis.load_events` does.

A local destination (a path or a ``file://`` URL) may not lie inside a
source's state dir, may not be a source archive, and no symbolic link may
stand anywhere under its ``source=`` folders: links are refused, never
followed, so an export cannot write outside its destination.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tau_ops.analysis.sources import given_sources, is_archive
from tau_ops.errors import InputError, UsageError

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_KEEP = re.compile(r"[A-Za-z0-9.-]")
_RESERVED = ("__HIVE_DEFAULT_PARTITION__",)


@dataclass(frozen=True)
class ExportSource:
    """One source of an export: its partition name, the path as given, and its kind.

    Examples
    --------
    >>> ExportSource("iad", "/srv/iad/deployment", archive=False).name
    'iad'
    """

    name: str
    path: str
    archive: bool


def source_name(text: str) -> str:
    """The partition name derived from a path: ``[A-Za-z0-9.-]`` kept, each other byte ``_XX``.

    The escape is injective: two different paths never share a name (``a_b``
    is ``a_5Fb``, ``a/b`` is ``a_2Fb``).

    Parameters
    ----------
    text : str
        A source path as given (surrounding blanks are ignored).

    Returns
    -------
    str
        The ``source=`` partition value.

    Raises
    ------
    UsageError
        Nothing usable is left (empty, ``.`` or ``..``).

    Examples
    --------
    >>> source_name("/srv/iad/deployment")
    '_2Fsrv_2Fiad_2Fdeployment'
    """
    text = text.strip()
    name = "".join(ch if _KEEP.fullmatch(ch) else
                   "".join(f"_{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
                   for ch in text)
    if name in ("", ".", ".."):
        raise UsageError(f"export source name {text!r} is empty once escaped")
    return name


def checked_name(name: str) -> str:
    """A ``NAME=PATH`` name as given, refused unless it reads back as itself everywhere.

    Parameters
    ----------
    name : str
        The name given before ``=``.

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    UsageError
        A character outside ``[A-Za-z0-9._-]``, ``.``/``..``, or a reserved
        name (``__HIVE_DEFAULT_PARTITION__`` reads back as null).

    Examples
    --------
    >>> checked_name("iad-1")
    'iad-1'
    >>> checked_name("é")
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: export source name 'é' must be made of A-Z a-z 0-9 . _ - ...
    """
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"export source name {name!r} must be made of A-Z a-z 0-9 . _ - "
                         "(and be neither . nor ..): another name would merge with it")
    if name.upper() in _RESERVED:
        raise UsageError(f"export source name {name!r} is reserved: it reads back as null")
    return name


def parse_sources(sources: Sequence[str]) -> list[ExportSource]:
    """``NAME=PATH`` or ``PATH`` sources, named, checked to exist and to differ.

    Parameters
    ----------
    sources : sequence of str
        The sources as given on the command line.

    Returns
    -------
    list of ExportSource
        In the order given.

    Raises
    ------
    UsageError
        No source, a refused name, or two sources with one name.
    InputError
        A state dir or events file does not exist, or one source is given
        twice (two spellings of one path, a state dir and its log).

    Examples
    --------
    >>> parse_sources(["iad=/srv/iad", "fra=/srv/iad"])  # doctest: +SKIP
    """
    if not sources:
        raise UsageError("export needs at least one source")
    parsed = []
    for raw in sources:
        head, sep, tail = raw.partition("=")
        if sep and "/" not in head and tail:
            parsed.append(ExportSource(checked_name(head), tail, is_archive(tail)))
        else:
            parsed.append(ExportSource(source_name(raw), raw, is_archive(raw)))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise UsageError(f"export source names must differ: {sorted(names)}")
    given_sources([s.path for s in parsed])  # existence, and one log given twice
    return parsed


def check_local_destination(target: Path, given: str, sources: Sequence[ExportSource]) -> None:
    """Refuse a local destination inside a source's state dir, or a source archive itself.

    Parameters
    ----------
    target : Path
        The destination's local path (from a path or a ``file://`` URL).
    given : str
        The destination as given, for the message.
    sources : sequence of ExportSource
        The parsed sources.

    Raises
    ------
    UsageError
        The destination lies inside a state dir (or an events file's folder),
        or is (inside) an archive source.

    Examples
    --------
    >>> check_local_destination(Path("/srv/out"), "/srv/out", [])
    """
    target = target.resolve()
    for source in sources:
        where = Path(source.path).resolve()
        if source.archive:
            if target.is_relative_to(where):
                raise UsageError(f"export destination {given} is the archive {source.path}")
            continue
        where = where if where.is_dir() else where.parent
        if target.is_relative_to(where):
            raise UsageError(f"export destination {given} lies inside source {source.path}: "
                             "writing there would change the state dir")


def refuse_links(folder: Path) -> None:
    """Refuse a symbolic link at ``folder`` or anywhere under it, without following any.

    Parameters
    ----------
    folder : Path
        A ``source=`` folder of a local destination (it may not exist yet).

    Raises
    ------
    InputError
        A symbolic link is found; the message names it.

    Examples
    --------
    >>> refuse_links(Path("/nonexistent/source=A"))
    """
    pending = [folder]
    while pending:
        here = pending.pop()
        if here.is_symlink():
            raise InputError(f"export destination holds a symbolic link {here}: refused "
                             "(an export never writes through a link)", path=here)
        if not here.is_dir():
            continue
        with os.scandir(here) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise InputError(f"export destination holds a symbolic link {entry.path}: "
                                     "refused (an export never writes through a link)",
                                     path=entry.path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
