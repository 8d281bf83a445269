"""Per-blueprint channel store: ``log.jsonl``, ``context.jsonl`` and ``MEMORY.md``.

The runner hands every case it handled to :func:`case_lines`; the store turns
them into log and context lines and a memory snapshot (SPEC section 5).
:func:`inspect_channel` reports what is there for an operator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tau_ops.errors import UsageError
from tau_ops.models import RolloutRecord
from tau_ops.storage import read_jsonl, safe_component

TRANSPORT = "deployment"
SOURCE = "tau-ops-deployment-runner"
LOG_FILE = "log.jsonl"
CONTEXT_FILE = "context.jsonl"
MEMORY_FILE = "MEMORY.md"


def channel_dir(root: Path, blueprint_id: str) -> Path:
    """``<root>/deployment/<blueprint_id>/`` with the id made path-safe."""
    return root / TRANSPORT / safe_component(blueprint_id)


def log_line(
    *, timestamp_ms: int, key: str, payload: dict[str, Any]
) -> str:
    """One ``log.jsonl`` line for a handled case."""
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


def render_memory(blueprint_id: str, rollouts: Iterable[RolloutRecord], *, now_ms: int) -> str:
    """Markdown snapshot of one blueprint's rollouts (already filtered to it)."""
    rows = list(rollouts)
    lines = [
        f"# Deployment memory: {blueprint_id}",
        "",
        f"Snapshot at unix ms {now_ms}: {len(rows)} rollout(s).",
        "",
    ]
    if not rows:
        lines.append("No successful rollouts recorded for this blueprint yet.")
        return "\n".join(lines) + "\n"
    lines += [
        "| case_id | target | runtime | environment | region | replicas | strategy | "
        "status | artifact | sha256 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        sha = r.artifact_sha256[:12] if r.artifact_sha256 else "-"
        cells = [
            r.case_id, r.deploy_target, r.runtime_profile, r.environment, r.region,
            str(r.replicas), r.rollout_strategy, str(r.status_code), r.artifact, sha,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


class ChannelInspectReport(BaseModel):
    """What ``--channel-store-inspect deployment/<blueprint_id>`` reports."""

    channel: str
    transport: str
    channel_id: str
    channel_dir: str
    exists: bool
    log_records: int
    log_invalid_lines: int
    context_records: int
    context_invalid_lines: int
    memory_exists: bool
    memory_bytes: int
    last_event_key: str | None
    last_timestamp_unix_ms: int | None


def parse_channel_ref(ref: str) -> tuple[str, str]:
    """Split ``deployment/<blueprint_id>``; the id is made path-safe."""
    transport, sep, channel_id = ref.strip().partition("/")
    if not sep or not channel_id.strip():
        raise UsageError(f"channel must look like deployment/<blueprint_id>, got {ref!r}")
    if transport != TRANSPORT:
        raise UsageError(f"unsupported channel transport {transport!r} (expected 'deployment')")
    return transport, safe_component(channel_id.strip())


def inspect_channel(root: Path, ref: str) -> ChannelInspectReport:
    """Count records and invalid lines of one channel and measure its memory file."""
    transport, channel_id = parse_channel_ref(ref)
    folder = root / transport / channel_id
    logs, log_invalid = read_jsonl(folder / LOG_FILE)
    contexts, context_invalid = read_jsonl(folder / CONTEXT_FILE)
    memory = folder / MEMORY_FILE
    last = logs[-1] if logs else {}
    last_key = last.get("event_key")
    last_ts = last.get("timestamp_unix_ms")
    return ChannelInspectReport(
        channel=f"{transport}/{channel_id}",
        transport=transport,
        channel_id=channel_id,
        channel_dir=str(folder),
        exists=folder.is_dir(),
        log_records=len(logs),
        log_invalid_lines=log_invalid,
        context_records=len(contexts),
        context_invalid_lines=context_invalid,
        memory_exists=memory.is_file(),
        memory_bytes=memory.stat().st_size if memory.is_file() else 0,
        last_event_key=last_key if isinstance(last_key, str) else None,
        last_timestamp_unix_ms=last_ts if isinstance(last_ts, int) else None,
    )
