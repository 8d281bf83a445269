"""The runner pause switch: 'stop invoking the runner' as a marker scheduled runners obey."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from pydantic import BaseModel, Field

from tau_ops import jsonio, storage
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.state import StatePaths


class PauseStatus(BaseModel):
    """Whether the runner of a state dir is paused, since when and why.

    Examples
    --------
    >>> import tempfile
    >>> status = pause_status(tempfile.mkdtemp())
    >>> status.paused, status.marker_path.endswith("runner-paused.json")
    (False, True)
    """

    state_dir: str = Field(description="The state dir.")
    paused: bool = Field(description="Whether a pause marker exists (an unreadable one counts).")
    marker_path: str = Field(description="Path of ``runner-paused.json``.")
    paused_unix_ms: int | None = Field(
        default=None,
        description="When it was paused, Unix time in milliseconds (UTC); null when unknown."
    )
    reason: str | None = Field(default=None, description="Why it was paused; null when unknown.")
    paused_by: str | None = Field(
        default=None,
        description="Who paused it (login name); null when unknown."
    )


def pause_status(state_dir: Path | str) -> PauseStatus:
    """Read the pause marker (an unreadable marker still counts as paused).

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir (read only).

    Returns
    -------
    PauseStatus
        ``paused`` and, as far as the marker says, when (Unix ms), who and why.

    Examples
    --------
    >>> import tempfile
    >>> pause_status(tempfile.mkdtemp()).paused
    False
    """
    state_dir = Path(state_dir)
    marker = StatePaths(state_dir).pause_marker
    if not os.path.lexists(marker):
        return PauseStatus(state_dir=str(state_dir), paused=False, marker_path=str(marker))
    try:
        data = jsonio.parse_json(jsonio.read_bounded(
            marker, max_bytes=jsonio.LIMITS["pause_marker"], what="pause marker"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    return PauseStatus(
        state_dir=str(state_dir),
        paused=True,
        marker_path=str(marker),
        paused_unix_ms=data.get("paused_unix_ms") if isinstance(
            data.get("paused_unix_ms"), int) else None,
        reason=str(data["reason"]) if "reason" in data else None,
        paused_by=str(data["paused_by"]) if "paused_by" in data else None,
    )


def pause_runner(
    state_dir: Path | str, *, reason: str = "", clock: Clock = wall_clock_ms
) -> PauseStatus:
    """Write the marker that makes ``--deployment-contract-runner`` refuse to run.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir (created when missing).
    reason : str
        Why, for the reports (default empty).
    clock : callable, optional
        ``() -> int``, Unix time in milliseconds, recorded as ``paused_unix_ms``.

    Returns
    -------
    PauseStatus
        The marker as written; ``paused_by`` is the login name.

    Raises
    ------
    StateError
        The state dir cannot be locked, or the marker cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> status = pause_runner(tempfile.mkdtemp(), reason="freeze", clock=lambda: 1_000)
    >>> status.paused, status.paused_unix_ms, status.reason
    (True, 1000, 'freeze')
    """
    state_dir = Path(state_dir)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    with storage.state_lock(state_dir):
        storage.atomic_write_json(
            StatePaths(state_dir).pause_marker,
            {"paused_unix_ms": clock(), "reason": reason, "paused_by": user},
            root=state_dir,
        )
    return pause_status(state_dir)


def resume_runner(state_dir: Path | str) -> PauseStatus:
    """Remove the pause marker; resuming a runner that is not paused is a no-op.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.

    Returns
    -------
    PauseStatus
        ``paused`` False.

    Raises
    ------
    StateError
        The state dir cannot be locked, or the marker cannot be removed.

    Examples
    --------
    >>> import tempfile
    >>> state_dir = tempfile.mkdtemp()
    >>> _ = pause_runner(state_dir)
    >>> resume_runner(state_dir).paused
    False
    """
    state_dir = Path(state_dir)
    with storage.state_lock(state_dir):
        storage.unlink(StatePaths(state_dir).pause_marker, root=state_dir)
    return pause_status(state_dir)
