"""The runner pause switch: 'stop invoking the runner' as a marker scheduled runners obey."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from pydantic import BaseModel

from tau_ops import jsonio, storage
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.state import StatePaths


class PauseStatus(BaseModel):
    """Whether the runner of a state dir is paused, since when and why."""

    state_dir: str
    paused: bool
    marker_path: str
    paused_unix_ms: int | None = None
    reason: str | None = None
    paused_by: str | None = None


def pause_status(state_dir: Path | str) -> PauseStatus:
    """Read the pause marker (an unreadable marker still counts as paused)."""
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
    """Write the marker that makes ``--deployment-contract-runner`` refuse to run."""
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
    """Remove the pause marker; resuming a runner that is not paused is a no-op."""
    state_dir = Path(state_dir)
    with storage.state_lock(state_dir):
        storage.unlink(StatePaths(state_dir).pause_marker, root=state_dir)
    return pause_status(state_dir)
