"""The deployment state directory: its paths, ``state.json``, and the commit journal.

Writers hold :func:`tau_ops.storage.state_lock` and go through
:func:`load_state_for_update` (which quarantines a corrupt ``state.json``) and
:func:`commit_cycle`. Readers use :func:`read_state`, which never changes files.

A cycle commits in this order: journal (sizes of the files it will append
to, hash of the new state), appends, ``state.json`` (the commit point),
``MEMORY.md`` rewrites, journal removed. :func:`recover` finishes or undoes an
interrupted commit, so a runner killed at any moment loses or duplicates
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tau_ops import storage
from tau_ops.errors import StateError
from tau_ops.models import DeploymentState

log = logging.getLogger("tau_ops")

DEFAULT_STATE_DIR = Path(".tau/deployment")
STATE_FILE = "state.json"
EVENTS_FILE = "runtime-events.jsonl"
JOURNAL_FILE = ".cycle-journal.json"
PAUSE_FILE = "runner-paused.json"
CHANNEL_STORE_DIR = "channel-store"
WASM_ARTIFACTS_DIR = "wasm-artifacts"


@dataclass(frozen=True)
class StatePaths:
    """Every well-known path under one state dir."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def events(self) -> Path:
        return self.root / EVENTS_FILE

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_FILE

    @property
    def pause_marker(self) -> Path:
        return self.root / PAUSE_FILE

    @property
    def channel_store(self) -> Path:
        return self.root / CHANNEL_STORE_DIR

    @property
    def wasm_artifacts(self) -> Path:
        return self.root / WASM_ARTIFACTS_DIR


def parse_state(data: bytes) -> DeploymentState:
    """Parse ``state.json`` bytes; raises ValueError or ValidationError."""
    state = DeploymentState.model_validate_json(data)
    if state.schema_version != 1:
        raise ValueError(f"unsupported schema_version {state.schema_version}")
    return state


def read_state(state_dir: Path) -> DeploymentState | None:
    """Read ``state.json`` without changing anything; None when there is none yet.

    Raises :class:`StateError` when the file exists but cannot be parsed.
    """
    path = StatePaths(state_dir).state
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    try:
        return parse_state(data)
    except (ValueError, ValidationError) as exc:
        raise StateError(f"state file {path} is corrupt and cannot be parsed", path=path) from exc


def load_state_for_update(state_dir: Path, *, now_ms: int) -> DeploymentState:
    """Read state for a writer holding the lock; quarantine a corrupt file, never overwrite it."""
    path = StatePaths(state_dir).state
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DeploymentState()
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    try:
        return parse_state(data)
    except (ValueError, ValidationError):
        aside = path.with_name(f"{STATE_FILE}.corrupt-{now_ms}")
        os.replace(path, aside)
        log.warning("state file %s could not be parsed; moved it aside to %s", path, aside)
        return DeploymentState()


def dump_state(state: DeploymentState) -> bytes:
    """Serialize state as pretty JSON, unknown fields of other tools included."""
    return state.model_dump_json(indent=2).encode("utf-8") + b"\n"


def save_state(state_dir: Path, state: DeploymentState) -> None:
    """Atomically replace ``state.json`` (callers hold the lock)."""
    storage.atomic_write_bytes(StatePaths(state_dir).state, dump_state(state))


def update_state(
    state_dir: Path, change: Callable[[DeploymentState], None], *, now_ms: int
) -> DeploymentState:
    """Read-modify-write ``state.json`` under the lock, keeping every other field."""
    with storage.state_lock(state_dir):
        recover(state_dir)
        state = load_state_for_update(state_dir, now_ms=now_ms)
        change(state)
        save_state(state_dir, state)
        return state


def _rel(state_dir: Path, path: Path) -> str:
    return path.relative_to(state_dir).as_posix()


def _inside(state_dir: Path, name: str) -> Path:
    path = (state_dir / name).resolve()
    if not path.is_relative_to(state_dir.resolve()):
        raise StateError(f"journal in {state_dir} names a path outside it: {name}", path=state_dir)
    return path


@dataclass
class Commit:
    """Everything one cycle writes: appends, the new state, and rewritten files."""

    state: bytes
    appends: dict[Path, list[str]] = field(default_factory=dict)
    rewrites: dict[Path, str] = field(default_factory=dict)


def commit_cycle(state_dir: Path, commit: Commit) -> None:
    """Write a cycle's files so that a crash at any point can be finished or undone."""
    paths = StatePaths(state_dir)
    sizes = {}
    for path in commit.appends:
        sizes[_rel(state_dir, path)] = storage.repair_torn_tail(path)
    journal = {
        "state_sha256": hashlib.sha256(commit.state).hexdigest(),
        "append_sizes": sizes,
        "rewrites": {_rel(state_dir, path): text for path, text in commit.rewrites.items()},
    }
    storage.atomic_write_json(paths.journal, journal)
    for path, lines in commit.appends.items():
        storage.append_lines(path, lines)
    storage.atomic_write_bytes(paths.state, commit.state)
    for path, text in commit.rewrites.items():
        storage.atomic_write_text(path, text)
    paths.journal.unlink()


def _remove_stale_temp_files(state_dir: Path) -> None:
    store = StatePaths(state_dir).channel_store
    # The runbook's channel tree and the seed's (channels/deployment/*).
    folders = [state_dir, *store.glob("deployment/*"), *store.glob("channels/deployment/*")]
    for folder in folders:
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def recover(state_dir: Path) -> None:
    """Finish (state committed) or undo (not committed) a cycle a killed runner left.

    Callers hold the state lock, so temp files of unfinished atomic writes found
    here belong to a dead writer and are removed too.
    """
    paths = StatePaths(state_dir)
    _remove_stale_temp_files(state_dir)
    try:
        journal = json.loads(paths.journal.read_bytes())
    except FileNotFoundError:
        return
    except ValueError:
        # The journal is written atomically; an unreadable one was never completed.
        paths.journal.unlink()
        return
    try:
        current = hashlib.sha256(paths.state.read_bytes()).hexdigest()
    except FileNotFoundError:
        current = ""
    if current == journal.get("state_sha256"):
        for name, text in journal.get("rewrites", {}).items():
            storage.atomic_write_text(_inside(state_dir, name), text)
        log.warning("finished an interrupted cycle commit in %s", state_dir)
    else:
        for name, size in journal.get("append_sizes", {}).items():
            storage.truncate_to(_inside(state_dir, name), int(size))
        log.warning("rolled back an interrupted cycle in %s", state_dir)
    paths.journal.unlink()
