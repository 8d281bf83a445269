"""Per-blueprint channel store: ``log.jsonl``, ``context.jsonl`` and ``MEMORY.md``.

Records, ``source``, context text and the ``MEMORY.md`` format follow the
seed (SPEC section 5). A new state dir keeps its channels under the runbook's
``channel-store/deployment/<blueprint_id>/``; a state dir made by the seed has
them under ``channel-store/channels/deployment/<blueprint_id>/`` and keeps
them there. :func:`channel_dir` is the one place that decides, used by the
runner and by every reader; :func:`inspect_channel` reports what is there.

In a seed layout the folder name is the seed's (:func:`seed_channel_name`):
blueprint ids outside ``[A-Za-z0-9_-]`` share the folder ``deployment``, so a
shared folder's lines are told apart by their ``payload.blueprint_id``
(:func:`record_blueprint_id`), as every reader here does.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tau_ops.errors import InputError, UsageError
from tau_ops.jsonio import JSONPolicyError, is_json_int, parse_json
from tau_ops.models import RolloutRecord
from tau_ops.storage import safe_component

TRANSPORT = "deployment"
SOURCE = "tau-deployment-runner"
LOG_FILE = "log.jsonl"
CONTEXT_FILE = "context.jsonl"
MEMORY_FILE = "MEMORY.md"
SEED_CHANNELS_DIR = "channels"
ARTIFACT_INDEX = Path("artifacts") / "index.jsonl"


def channel_base(root: Path) -> Path:
    """The folder holding one sub-folder per blueprint, for channel-store ``root``.

    Parameters
    ----------
    root : Path
        The channel-store root (``<state dir>/channel-store``).

    Returns
    -------
    Path
        ``root/channels/deployment`` when the seed laid this store out (that
        folder exists and the runbook's ``root/deployment`` does not, or is an
        empty folder), else
        ``root/deployment``, so a store never grows a second tree.

    Examples
    --------
    >>> channel_base(Path("/nonexistent/channel-store")).as_posix()
    '/nonexistent/channel-store/deployment'
    """
    runbook = root / TRANSPORT
    seed = root / SEED_CHANNELS_DIR / TRANSPORT
    if seed.is_dir() and (not runbook.is_dir() or not any(runbook.iterdir())):
        return seed  # an empty runbook folder beside the seed's tree holds no history
    return runbook


_SEED_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_SEED_PATH_CHARS = _SEED_ID_CHARS | {"."}


def seed_channel_name(blueprint_id: str) -> str:
    """The folder name the seed's runner files ``blueprint_id`` under.

    The seed first maps the trimmed id to itself when it is made only of
    ``[A-Za-z0-9_-]`` and to ``deployment`` otherwise (or when empty), then
    makes that a path component: characters outside ``[A-Za-z0-9._-]`` become
    ``_``, leading and trailing ``_`` are cut, and nothing left gives
    ``channel``. So every id with another character shares one folder.

    Parameters
    ----------
    blueprint_id : str
        The blueprint id as the fixture has it.

    Returns
    -------
    str
        The seed's folder name.

    Examples
    --------
    >>> [seed_channel_name(b) for b in ("edge", " edge.api ", "eu west", "_edge_", "___")]
    ['edge', 'deployment', 'deployment', 'edge', 'channel']
    """
    trimmed = blueprint_id.strip()
    if not trimmed or not set(trimmed) <= _SEED_ID_CHARS:
        trimmed = TRANSPORT
    name = "".join(c if c in _SEED_PATH_CHARS else "_" for c in trimmed).strip("_")
    return name or "channel"


def is_seed_layout(root: Path) -> bool:
    """Whether channel-store ``root`` keeps its channels where the seed put them.

    Parameters
    ----------
    root : Path
        The channel-store root (``<state dir>/channel-store``).

    Returns
    -------
    bool
        True when :func:`channel_base` is ``root/channels/deployment``.

    Examples
    --------
    >>> is_seed_layout(Path("/nonexistent/channel-store"))
    False
    """
    return channel_base(root) != root / TRANSPORT


def channel_dir(root: Path, blueprint_id: str) -> Path:
    """The channel folder of ``blueprint_id`` in channel-store ``root`` (seed layout honoured).

    Parameters
    ----------
    root : Path
        The channel-store root (``<state dir>/channel-store``).
    blueprint_id : str
        The blueprint id; trimmed.

    Returns
    -------
    Path
        In the runbook's layout ``deployment/<id made path-safe>`` (only
        ``[A-Za-z0-9._-]`` kept), one folder per blueprint; in a seed-laid-out
        store exactly the seed's folder ``channels/deployment/<seed name>``
        (:func:`seed_channel_name`), which several blueprints may share.

    Examples
    --------
    >>> channel_dir(Path("/s/channel-store"), " team/api ").as_posix()
    '/s/channel-store/deployment/team_api'
    """
    base = channel_base(root)
    if base != root / TRANSPORT:
        return base / seed_channel_name(blueprint_id)
    return base / safe_component(blueprint_id.strip())


def record_blueprint_id(record: dict[str, Any], folder: Path) -> str:
    """The blueprint a channel-log line belongs to: its payload's, else its folder's name.

    Parameters
    ----------
    record : dict
        One parsed ``log.jsonl`` line.
    folder : Path
        The channel folder it was read from.

    Returns
    -------
    str
        ``payload.blueprint_id`` trimmed when it is a non-blank string (the
        seed and tau-ops always write it; in a shared seed folder it is the
        only way to tell blueprints apart), else ``folder.name``.

    Examples
    --------
    >>> record_blueprint_id({"payload": {"blueprint_id": "edge.api"}}, Path("deployment"))
    'edge.api'
    """
    payload = record.get("payload")
    found = payload.get("blueprint_id") if isinstance(payload, dict) else None
    if isinstance(found, str) and found.strip():
        return found.strip()
    return folder.name


def channel_dirs(root: Path) -> list[Path]:
    """Every existing channel folder of channel-store ``root``, sorted by name."""
    base = channel_base(root)
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.name)


def log_line(
    *, timestamp_ms: int, key: str, payload: dict[str, Any]
) -> str:
    """One ``log.jsonl`` line for a handled case (the seed's ``ChannelLogEntry``)."""
    return json.dumps(
        {
            "timestamp_unix_ms": timestamp_ms,
            "direction": "system",
            "event_key": key,
            "source": SOURCE,
            "payload": payload,
        },
        separators=(",", ":"),
    )


def context_line(*, timestamp_ms: int, text: str) -> str:
    """One ``context.jsonl`` line: a human summary of a handled case."""
    return json.dumps(
        {"timestamp_unix_ms": timestamp_ms, "role": "system", "text": text},
        separators=(",", ":"),
    )


def render_memory(blueprint_id: str, rollouts: Iterable[RolloutRecord]) -> str:
    """``MEMORY.md`` of one blueprint in the seed's format (rollouts already filtered to it).

    Parameters
    ----------
    blueprint_id : str
        The (trimmed) blueprint id named in the header line.
    rollouts : iterable of RolloutRecord
        That blueprint's rollouts, sorted by case key.

    Returns
    -------
    str
        ``# Tau Deployment Snapshot (<id>)``, a blank line, one ``- <case_id>
        target=... runtime=... artifact=... replicas=... status=... outcome=...``
        line per rollout, newline-terminated.

    Examples
    --------
    >>> print(render_memory("edge", []), end="")
    # Tau Deployment Snapshot (edge)
    <BLANKLINE>
    - No persisted rollouts
    """
    lines = [f"# Tau Deployment Snapshot ({blueprint_id})", ""]
    for r in rollouts:
        lines.append(
            f"- {r.case_id} target={r.deploy_target} runtime={r.runtime_profile} "
            f"artifact={r.artifact} replicas={r.replicas} status={r.status_code} "
            f"outcome={r.outcome}"
        )
    if len(lines) == 2:
        lines.append("- No persisted rollouts")
    return "\n".join(lines) + "\n"


class ChannelInspectReport(BaseModel):
    """What ``--channel-store-inspect deployment/<blueprint_id>`` reports.

    The first fields are the seed's ``ChannelInspectReport``; ``channel``,
    ``exists``, ``layout``, ``last_event_key`` and ``last_timestamp_unix_ms``
    are tau-ops additions.

    Examples
    --------
    >>> report = inspect_channel(Path("/nonexistent"), "deployment/edge")
    >>> report.channel, report.exists, report.memory_bytes
    ('deployment/edge', False, 0)
    """

    transport: str = Field(description="the transport, always deployment")
    channel_id: str = Field(description="the blueprint id, trimmed")
    channel_dir: str = Field(description="the channel's folder (path)")
    log_records: int = Field(description="valid lines of log.jsonl (lines)")
    context_records: int = Field(description="valid lines of context.jsonl (lines)")
    invalid_log_lines: int = Field(
        description="log.jsonl lines that are not JSON objects under the JSON policy (lines)")
    invalid_context_lines: int = Field(
        description="context.jsonl lines that are not JSON objects under the JSON policy (lines)")
    artifact_records: int = Field(description="valid lines of the seed's artifact index (lines)")
    invalid_artifact_lines: int = Field(
        description="artifact index lines that are not valid (lines)")
    active_artifacts: int = Field(description="artifacts not yet expired at now_ms")
    expired_artifacts: int = Field(
        description="artifacts whose expires_unix_ms is at or before now_ms")
    memory_exists: bool = Field(description="whether MEMORY.md exists as a regular file")
    memory_bytes: int = Field(description="size of MEMORY.md (bytes; 0 when absent)")
    channel: str = Field(description="deployment/<blueprint_id> as read")
    exists: bool = Field(description="whether the channel folder exists")
    layout: str = Field(description="seed (channels/deployment/...) or runbook")
    last_event_key: str | None = Field(description="event_key of the last valid log line, if any")
    last_timestamp_unix_ms: int | None = Field(
        description="timestamp of the last valid log line (Unix ms), if any")


def parse_channel_ref(ref: str) -> tuple[str, str]:
    """Split ``deployment/<blueprint_id>`` into (transport, trimmed channel id)."""
    transport, sep, channel_id = ref.strip().partition("/")
    if not sep or not channel_id.strip():
        raise UsageError(f"channel must look like deployment/<blueprint_id>, got {ref!r}")
    if transport.strip() != TRANSPORT:
        raise UsageError(f"unsupported channel transport {transport!r} (expected 'deployment')")
    return TRANSPORT, channel_id.strip()


def _lines(path: Path) -> Iterator[bytes]:
    """Non-blank lines of a regular file; nothing when it is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InputError(f"{path} is not a regular file", path=path)
        for raw in handle:
            if raw.strip():
                yield raw


def _scan(path: Path) -> tuple[int, int, Any]:
    """(valid lines, invalid lines, last valid value) under the one JSON policy."""
    valid = invalid = 0
    last: Any = None
    for raw in _lines(path):
        try:
            last = parse_json(raw.strip())
        except JSONPolicyError:
            invalid += 1
            continue
        valid += 1
    return valid, invalid, last


def _scan_artifacts(path: Path, now_ms: int) -> tuple[int, int, int]:
    """(records, invalid lines, expired records) of a seed artifact index."""
    records = invalid = expired = 0
    for raw in _lines(path):
        try:
            value = parse_json(raw.strip())
        except JSONPolicyError:
            invalid += 1
            continue
        if not isinstance(value, dict):
            invalid += 1
            continue
        records += 1
        expires = value.get("expires_unix_ms")
        if isinstance(expires, int) and is_json_int(expires) and expires <= now_ms:
            expired += 1
    return records, invalid, expired


def inspect_channel(root: Path, ref: str, *, now_ms: int | None = None) -> ChannelInspectReport:
    """Count records and invalid lines of one channel and measure its memory file.

    Parameters
    ----------
    root : Path
        The channel-store root; a seed-laid-out root (``channels/deployment``) is read too.
    ref : str
        ``deployment/<blueprint_id>``.
    now_ms : int, optional
        Unix time in milliseconds that decides which seed artifacts are expired.

    Returns
    -------
    ChannelInspectReport
        The seed's counts plus tau-ops fields. A line that breaks the JSON
        policy (too deep, duplicate key, ...) counts as invalid.

    Raises
    ------
    UsageError
        ``ref`` is not ``deployment/<id>``.
    InputError
        A channel file exists but is not a regular file or cannot be read.

    Examples
    --------
    >>> inspect_channel(Path("/nonexistent"), "deployment/edge").log_records
    0
    """
    transport, channel_id = parse_channel_ref(ref)
    folder = channel_dir(root, channel_id)
    seed_layout = folder.parent == root / SEED_CHANNELS_DIR / TRANSPORT
    log_valid, log_invalid, last = _scan(folder / LOG_FILE)
    context_valid, context_invalid, _ = _scan(folder / CONTEXT_FILE)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    artifacts, artifact_invalid, expired = _scan_artifacts(folder / ARTIFACT_INDEX, now)
    memory = folder / MEMORY_FILE
    last = last if isinstance(last, dict) else {}
    last_key, last_ts = last.get("event_key"), last.get("timestamp_unix_ms")
    return ChannelInspectReport(
        transport=transport,
        channel_id=channel_id,
        channel_dir=str(folder),
        log_records=log_valid,
        context_records=context_valid,
        invalid_log_lines=log_invalid,
        invalid_context_lines=context_invalid,
        artifact_records=artifacts,
        invalid_artifact_lines=artifact_invalid,
        active_artifacts=artifacts - expired,
        expired_artifacts=expired,
        memory_exists=memory.is_file(),
        memory_bytes=memory.stat().st_size if memory.is_file() else 0,
        channel=f"{transport}/{channel_id}",
        exists=folder.is_dir(),
        layout="seed" if seed_layout else "runbook",
        last_event_key=last_key if isinstance(last_key, str) else None,
        last_timestamp_unix_ms=last_ts if is_json_int(last_ts) else None,
    )
