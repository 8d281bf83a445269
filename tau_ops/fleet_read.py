"""Reading one fleet member: a state dir or a snapshot archive.

Each reader returns what the member holds (:class:`MemberRead`) or raises
``OSError``, ``ValueError`` or a pydantic ``ValidationError``;
:mod:`tau_ops.fleet` judges the result. Gateways are read by
:mod:`tau_ops.fleet_gateway`. The archive library loads only when an archive
is read, so a fleet of state dirs starts without it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tau_ops import jsonio
from tau_ops.models import DeploymentState
from tau_ops.state import EVENTS_FILE, PAUSE_FILE, STATE_FILE, parse_state


@dataclass(frozen=True)
class MemberRead:
    """What was read of a member before judging: its state and pause marker, or a document.

    Attributes
    ----------
    state : DeploymentState or None
        The parsed ``state.json`` (None: none yet, or corrupt).
    invalid : str
        Why ``state.json`` could not be parsed ('' when it could).
    paused : bool
        A pause marker is there.
    document : dict or None
        A gateway's ``/gateway/status`` document (gateways only).

    Examples
    --------
    >>> MemberRead(paused=True).state is None
    True
    """

    state: DeploymentState | None = None
    invalid: str = ""
    paused: bool = False
    document: dict[str, Any] | None = None


def one_line(exc: BaseException) -> str:
    """Why a member was refused, on one line (:func:`tau_ops.jsonio.error_text`).

    Parameters
    ----------
    exc : BaseException
        What the reader raised.

    Returns
    -------
    str
        One line; the error's type name when it has no message.

    Examples
    --------
    >>> one_line(OSError("no   route"))
    'no route'
    """
    return jsonio.error_text(exc)


def read_state_dir(location: str) -> MemberRead:
    """One member's state.json (read once, through the JSON policy's bounded reader) and
    whether its pause marker is there: its presence pauses, readable or not, as status says.

    Parameters
    ----------
    location : str
        The state dir.

    Returns
    -------
    MemberRead
        The parsed state (or why it is invalid) and the pause.

    Raises
    ------
    OSError
        The folder does not exist or is not one (``FileNotFoundError``,
        ``NotADirectoryError``), or ``state.json`` is not a regular file, is over
        its limit or cannot be read, or the events log is not a regular file.

    Examples
    --------
    >>> import tempfile
    >>> read_state_dir(tempfile.mkdtemp())
    MemberRead(state=None, invalid='', paused=False, document=None)
    """
    try:
        data: bytes | None = jsonio.read_bounded(os.path.join(location, STATE_FILE),
                                                 max_bytes=jsonio.LIMITS["state"], what="state")
    except (FileNotFoundError, NotADirectoryError):  # only now ask why: one open when all is well
        if not os.path.exists(location):
            raise FileNotFoundError(f"state dir {location} does not exist") from None
        if not os.path.isdir(location):
            raise NotADirectoryError(f"state dir {location} is not a directory") from None
        data = None
    _events_readable(os.path.join(location, EVENTS_FILE))
    return state_read(data, paused=os.path.exists(os.path.join(location, PAUSE_FILE)))


def _events_readable(events: str) -> None:
    """Refuse an events log that is not a regular file (a FIFO, a folder), as ``tau-ops gate``
    does: one ``stat``, the log itself is not read."""
    try:
        info = os.stat(events)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"events file {events} is a {jsonio._kind(info.st_mode)}, "
                      "not a regular file")


def read_snapshot(location: str) -> MemberRead:
    """State and pause marker of an archive that passes ``tau-ops snapshot --verify``.

    Parameters
    ----------
    location : str
        The ``.tar.gz`` archive, read in memory without extracting anything.

    Returns
    -------
    MemberRead
        The parsed state (or why it is invalid) and the pause.

    Raises
    ------
    OSError
        The archive is not a regular file, or a member is over its limit.
    ValueError
        The archive is damaged, fails verification, has several root folders
        or holds a file twice.

    Examples
    --------
    >>> read_snapshot("/dev/null")
    Traceback (most recent call last):
    ...
    OSError: snapshot /dev/null is not a regular file

    Only a verified archive is judged: a tampered one, one without its inner
    manifest, with several root folders or with a file twice is unreadable.
    """
    import tarfile

    info = os.stat(location)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"snapshot {location} is not a regular file")
    wanted = {STATE_FILE: jsonio.LIMITS["state"], PAUSE_FILE: jsonio.LIMITS["pause_marker"]}
    try:
        return _read_archive(location, wanted)
    except tarfile.TarError as exc:  # a damaged archive: unreadable, like any bad input
        raise ValueError(f"snapshot {location} is not a readable archive: {exc}") from exc


def _read_archive(location: str, wanted: dict[str, int]) -> MemberRead:
    import tarfile

    from tau_ops.ops.snapshot import verify_snapshot

    # Verification first: it bounds the expanded size from the headers as it goes, so an
    # archive bomb is refused quickly (and named unreadable), never read to its end.
    verified = verify_snapshot(location)
    if not verified.ok:
        raise ValueError("snapshot failed verification: " + "; ".join(verified.problems[:3]))
    roots: set[str] = set()
    names: set[str] = set()
    with tarfile.open(location, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            roots.add(parts[0])
            if member.name in names:
                raise ValueError(f"snapshot holds {member.name} twice")
            names.add(member.name)
            name = parts[-1] if len(parts) == 2 else ""
            if name in wanted and member.size > wanted[name]:
                raise OSError(f"{member.name} is {member.size} bytes, over the limit")
    if len(roots) != 1:
        raise ValueError(f"snapshot has {len(roots)} root folders, not one")
    found: dict[str, bytes] = {}
    with tarfile.open(location, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            name = parts[-1] if len(parts) == 2 else ""
            if name in wanted and member.isfile():
                handle = tar.extractfile(member)
                found[name] = handle.read(wanted[name] + 1) if handle else b""
    return state_read(found.get(STATE_FILE), paused=PAUSE_FILE in found)


def state_read(state: bytes | None, *, paused: bool) -> MemberRead:
    """Parse what a state dir or archive holds; a corrupt state is judged, not unreadable.

    Parameters
    ----------
    state : bytes or None
        The ``state.json`` bytes, None when there is none.
    paused : bool
        A pause marker is there (readable or not, as status reads it).

    Returns
    -------
    MemberRead
        The parsed state, or ``invalid`` saying why it could not be parsed.

    Examples
    --------
    >>> state_read(b"[]", paused=False).invalid != ""
    True
    """
    if state is None:
        return MemberRead(paused=paused)
    try:
        return MemberRead(state=parse_state(state), paused=paused)
    except (ValueError, ValidationError) as exc:
        return MemberRead(invalid=one_line(exc)[:200], paused=paused)
