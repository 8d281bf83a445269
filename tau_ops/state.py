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

import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tau_ops import fsguard, jsonio, storage
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
    """Every well-known path under one state dir.

    Parameters
    ----------
    root : Path
        The deployment state dir.

    Examples
    --------
    >>> paths = StatePaths(Path("st"))
    >>> paths.state.as_posix(), paths.events.name, paths.pause_marker.name
    ('st/state.json', 'runtime-events.jsonl', 'runner-paused.json')
    """

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
    """Parse ``state.json`` bytes (strict JSON integers, unknown fields kept).

    Parameters
    ----------
    data : bytes
        The file's content.

    Returns
    -------
    DeploymentState

    Raises
    ------
    ValueError
        Not JSON, the wrong shape (a pydantic ``ValidationError``, a
        ``ValueError``), or a ``schema_version`` other than 1.

    Examples
    --------
    >>> parse_state(b'{"schema_version": 1}').rollouts
    []
    >>> parse_state(b'{"schema_version": 2}')
    Traceback (most recent call last):
    ...
    ValueError: unsupported schema_version 2
    """
    state = DeploymentState.model_validate_json(data)
    if state.schema_version != 1:
        raise ValueError(f"unsupported schema_version {state.schema_version}")
    return state


def _read_state_bytes(path: Path) -> bytes | None:
    try:
        return jsonio.read_bounded(path, max_bytes=jsonio.LIMITS["state"], what="state file")
    except FileNotFoundError:
        return None
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror}" if exc.strerror else str(exc)
        raise StateError(message, path=path) from exc


def read_state(state_dir: Path) -> DeploymentState | None:
    """Read ``state.json`` without changing anything; None when there is none yet.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.

    Returns
    -------
    DeploymentState or None
        The parsed file; None when ``state.json`` does not exist.

    Raises
    ------
    StateError
        The file exists but cannot be parsed, is over the size limit, or is
        not a regular file (a FIFO is refused without blocking).

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> read_state(state_dir) is None
    True
    """
    path = StatePaths(state_dir).state
    data = _read_state_bytes(path)
    if data is None:
        return None
    try:
        return parse_state(data)
    except (ValueError, ValidationError) as exc:
        raise StateError(f"state file {path} is corrupt and cannot be parsed: "
                         f"{jsonio.error_text(exc)}", path=path) from exc


def load_state_for_update(state_dir: Path, *, now_ms: int) -> DeploymentState:
    """Read state for a writer holding the lock; quarantine a corrupt file, never overwrite it.

    The corrupt file moves to ``state.json.corrupt-<now_ms>`` (``-2``, ``-3``...
    when that name is taken), so no quarantined file is ever replaced.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.
    now_ms : int
        The current time, Unix ms, used in the quarantine file's name.

    Returns
    -------
    DeploymentState
        The stored state, or a fresh one when there is none or it was quarantined.

    Raises
    ------
    StateError
        ``state.json`` is a symlink or special file, or cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> _ = (state_dir / "state.json").write_text("not json")
    >>> load_state_for_update(state_dir, now_ms=5).rollouts
    []
    >>> sorted(p.name for p in state_dir.iterdir())
    ['state.json.corrupt-5']
    """
    path = StatePaths(state_dir).state
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise fsguard.refuse(path, info.st_mode)
    data = _read_state_bytes(path)
    if data is None:
        return DeploymentState()
    try:
        return parse_state(data)
    except (ValueError, ValidationError):
        aside = storage.move_aside(path, f"corrupt-{now_ms}", root=state_dir)
        log.warning("state file %s could not be parsed; moved it aside to %s", path, aside)
        return DeploymentState()


def dump_state(state: DeploymentState) -> bytes:
    """Serialize state as pretty JSON, unknown fields of other tools included.

    Parameters
    ----------
    state : DeploymentState

    Returns
    -------
    bytes
        UTF-8 JSON, indented by 2, with a final newline.

    Examples
    --------
    >>> text = dump_state(DeploymentState.model_validate({"note": "kept"})).decode()
    >>> text.splitlines()[-2:]
    ['  "note": "kept"', '}']
    """
    return state.model_dump_json(indent=2).encode("utf-8") + b"\n"


def save_state(state_dir: Path, state: DeploymentState) -> None:
    """Atomically replace ``state.json`` (callers hold the lock).

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.
    state : DeploymentState
        The state to write.

    Raises
    ------
    StateError
        A link or special file is in the way.
    OSError
        The write failed (disk full, permissions).

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> save_state(state_dir, DeploymentState())
    >>> read_state(state_dir).schema_version
    1
    """
    storage.atomic_write_bytes(StatePaths(state_dir).state, dump_state(state), root=state_dir)


def update_state(
    state_dir: Path, change: Callable[[DeploymentState], None], *, now_ms: int
) -> DeploymentState:
    """Read-modify-write ``state.json`` under the lock, keeping every other field.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.
    change : callable
        ``(state) -> None``; changes the state in place.
    now_ms : int
        The current time, Unix ms (names a quarantined corrupt file).

    Returns
    -------
    DeploymentState
        The state as written.

    Raises
    ------
    StateError
        The state dir cannot be locked or written, or an interrupted cycle
        cannot be recovered.

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> def record(state): state.wasm_deliverables.append({"blueprint_id": "edge"})
    >>> update_state(state_dir, record, now_ms=0).wasm_deliverables
    [{'blueprint_id': 'edge'}]
    """
    with storage.state_lock(state_dir):
        recover(state_dir)
        state = load_state_for_update(state_dir, now_ms=now_ms)
        change(state)
        save_state(state_dir, state)
        return state


@dataclass
class Commit:
    """Everything one cycle writes: appends, the new state, and rewritten files.

    Parameters
    ----------
    state : bytes
        The new ``state.json`` content (the commit point).
    appends : dict of Path to list of str
        Lines to append per file (event log, channel logs), without newlines.
    rewrites : dict of Path to str
        Files rewritten whole after the commit point (``MEMORY.md``).

    Examples
    --------
    >>> Commit(state=b"{}").appends
    {}
    """

    state: bytes
    appends: dict[Path, list[str]] = field(default_factory=dict)
    rewrites: dict[Path, str] = field(default_factory=dict)


def deliverable_path(state_dir: Path, stored: str) -> Path:
    """Where a ``wasm_deliverables`` entry's file is now, read from this state dir.

    The packager records ``manifest_path`` as it was given (the seed does the
    same), so a relative path is relative to the folder packaging ran in. A
    path through the default artifact root (``wasm-artifacts/``) is read
    below *this* state dir when the file is there, so a moved, copied or
    restored state dir, or a command run from another folder, checks its own
    artifacts, never another copy's; any other path is used as recorded.

    Parameters
    ----------
    state_dir : Path
        The state dir the entry was read from.
    stored : str
        The recorded path (``manifest_path``).

    Returns
    -------
    Path
        The file to check.

    Examples
    --------
    >>> import tempfile
    >>> sd = Path(tempfile.mkdtemp())
    >>> (sd / "wasm-artifacts/edge").mkdir(parents=True)
    >>> _ = (sd / "wasm-artifacts/edge/m.json").write_text("{}")
    >>> found = deliverable_path(sd, ".tau/old/wasm-artifacts/edge/m.json")
    >>> found == sd / "wasm-artifacts/edge/m.json"
    True
    >>> deliverable_path(sd, "elsewhere/m.json")
    PosixPath('elsewhere/m.json')
    """
    path = Path(stored)
    parts = path.parts
    if WASM_ARTIFACTS_DIR in parts:
        at = len(parts) - 1 - parts[::-1].index(WASM_ARTIFACTS_DIR)
        local = Path(state_dir, *parts[at:])
        if local.is_file():
            return local
    return path


def _rel(state_dir: Path, path: Path) -> str:
    return Path(os.path.abspath(path)).relative_to(os.path.abspath(state_dir)).as_posix()


def _write_error(path: Path, exc: OSError, outcome: str) -> StateError:
    return StateError(f"cannot write {path}: {exc.strerror or exc}; {outcome}", path=path)


def commit_cycle(state_dir: Path, commit: Commit) -> list[str]:
    """Write a cycle's files so that a crash at any point can be finished or undone.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.
    commit : Commit
        What the cycle writes.

    Returns
    -------
    list of str
        Warnings about work after the commit point that failed (a ``MEMORY.md``
        that could not be rewritten): the cycle *is* committed, the next writer
        finishes the rest.

    Raises
    ------
    StateError
        Before the commit point: a file could not be written (named in the
        message); what was written is rolled back, nothing is committed.

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> commit = Commit(state=dump_state(DeploymentState()))
    >>> commit.appends[StatePaths(state_dir).events] = ['{"cycle": 1}']
    >>> commit_cycle(state_dir, commit)
    []
    >>> StatePaths(state_dir).events.read_text()
    '{"cycle": 1}\\n'
    """
    paths = StatePaths(state_dir)
    sizes = {}
    current = paths.journal
    try:
        for current in commit.appends:
            sizes[_rel(state_dir, current)] = storage.repair_torn_tail(current, root=state_dir)
        journal = {
            "state_sha256": hashlib.sha256(commit.state).hexdigest(),
            "append_sizes": sizes,
            "rewrites": {_rel(state_dir, p): text for p, text in commit.rewrites.items()},
        }
        current = paths.journal
        storage.atomic_write_json(current, journal, root=state_dir)
    except OSError as exc:
        raise _write_error(current, exc, "nothing was written") from exc
    try:
        for current, lines in commit.appends.items():
            storage.append_lines(current, lines, root=state_dir)
        current = paths.state
        storage.atomic_write_bytes(current, commit.state, root=state_dir)
    except (OSError, StateError) as exc:
        try:
            outcome = recover(state_dir)
        except StateError as undo:
            raise StateError(f"{exc}; and the cycle could not be rolled back: {undo}",
                             path=current) from exc
        if outcome != "finished":
            if isinstance(exc, StateError):
                raise
            raise _write_error(current, exc, "the cycle was rolled back, nothing committed") \
                from exc
        return [f"cycle committed, but {current}: {getattr(exc, 'strerror', None) or exc}"]
    return _finish(state_dir, dict(commit.rewrites))


def _finish(state_dir: Path, rewrites: dict[Path, str], *, last_try: bool = False) -> list[str]:
    """After the commit point: rewrite files, drop the journal; failures become warnings.

    The journal stays when a rewrite failed, so the next writer tries again;
    on that ``last_try`` it goes regardless, so a rewrite that can never
    succeed cannot block later writers.
    """
    warnings = []
    for path, text in rewrites.items():
        try:
            storage.atomic_write_text(path, text, root=state_dir)
        except (OSError, StateError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            warnings.append(f"cycle committed, but could not rewrite {path}: {reason}; "
                            "it is rewritten by the next cycle of that blueprint")
    try:
        if last_try or not warnings:
            storage.unlink(StatePaths(state_dir).journal, root=state_dir)
    except (OSError, StateError) as exc:
        warnings.append(f"cycle committed, but could not remove the journal: {exc}")
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _real_dirs(folders: list[Path]) -> list[Path]:
    """The folders that are directories and not links (links are warned about, not entered)."""
    kept = []
    for folder in folders:
        if folder.is_symlink():
            log.debug("not cleaning %s: it is a symbolic link", folder)
        elif folder.is_dir():
            kept.append(folder)
    return kept


def _remove_stale_temp_files(state_dir: Path) -> None:
    """Delete dead writers' ``.*.tmp`` files; folders that are links are never entered.

    Only regular files are temp files of tau-ops: a folder, link or special
    file that happens to be named like one is not ours and is left alone
    (every writer refuses links and special files in its own way, with an
    error naming the path).
    """
    folders = [state_dir]
    store = StatePaths(state_dir).channel_store
    # The runbook's channel tree (deployment/*) and the seed's (channels/deployment/*).
    for chain in ([store, store / "deployment"],
                  [store, store / "channels", store / "channels" / "deployment"]):
        if os.path.lexists(chain[-1]) and len(_real_dirs(chain)) == len(chain):
            folders += _real_dirs(sorted(chain[-1].iterdir()))
    for folder in folders:
        for leftover in folder.glob(".*.tmp"):
            if leftover.is_symlink() or not leftover.is_file():
                log.debug("not removing %s: not a regular file", leftover)
                continue
            storage.unlink(leftover, root=state_dir)


@dataclass(frozen=True)
class _Journal:
    state_sha256: str
    append_sizes: dict[str, int]
    rewrites: dict[str, str]


def _safe_name(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    parts = Path(name).parts
    return not Path(name).is_absolute() and ".." not in parts and "." not in parts


def _read_journal(path: Path) -> _Journal | None:
    """The journal, or None when there is none; raises ValueError when it is not ours."""
    try:
        data = jsonio.read_bounded(path, max_bytes=jsonio.LIMITS["journal"], what="journal")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(str(exc)) from exc
    value = jsonio.parse_json(data)
    sha, sizes, rewrites = (value.get(k) if isinstance(value, dict) else None
                            for k in ("state_sha256", "append_sizes", "rewrites"))
    if not (isinstance(sha, str) and isinstance(sizes, dict) and isinstance(rewrites, dict)
            and all(_safe_name(k) and jsonio.is_json_int(v) and v >= 0
                    for k, v in sizes.items())
            and all(_safe_name(k) and isinstance(v, str) for k, v in rewrites.items())):
        raise ValueError("journal does not have the shape tau-ops writes")
    return _Journal(sha, sizes, rewrites)


def _state_sha(state_dir: Path) -> str:
    data = _read_state_bytes(StatePaths(state_dir).state)
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def committed_sizes(state_dir: Path | str) -> dict[Path, int]:
    """Byte length of each appended file that belongs to committed cycles.

    When a writer died (or failed) between appending and committing, its
    uncommitted lines are still on disk until the next writer rolls them back.
    Readers cut each file named here at the given length; files not named are
    wholly committed. Reads only; never changes a file.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir.

    Returns
    -------
    dict of Path to int
        ``{path: committed length in bytes}``; empty when no uncommitted journal exists.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> committed_sizes(pathlib.Path(tempfile.mkdtemp()))
    {}
    """
    state_dir = Path(state_dir)
    try:
        journal = _read_journal(StatePaths(state_dir).journal)
        if journal is None or _state_sha(state_dir) == journal.state_sha256:
            return {}
    except (ValueError, StateError):
        return {}
    return {state_dir / name: size for name, size in journal.append_sizes.items()}


def recover(state_dir: Path) -> str | None:
    """Finish (state committed) or undo (not committed) a cycle a killed runner left.

    Callers hold the state lock, so temp files of unfinished atomic writes found
    here belong to a dead writer and are removed too. A journal tau-ops did not
    write (unreadable, wrong shape, names outside the state dir) is moved aside
    with a warning instead of blocking every later writer.

    Returns
    -------
    str or None
        ``"finished"``, ``"rolled_back"``, or None when there was nothing to recover.

    Raises
    ------
    StateError
        An uncommitted append cannot be undone (a file turned into a link, no
        permission); the message names the file and the operator's action, and
        the journal is kept so the next writer tries again once it is fixed.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir.

    Examples
    --------
    >>> import tempfile
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> recover(state_dir) is None
    True
    """
    paths = StatePaths(state_dir)
    _remove_stale_temp_files(state_dir)
    try:
        journal = _read_journal(paths.journal)
    except ValueError as exc:
        aside = storage.move_aside(paths.journal, f"invalid-{time.time_ns() // 1_000_000}",
                                   root=state_dir)
        log.warning("cycle journal %s is unusable (%s); moved it aside to %s",
                    paths.journal, exc, aside)
        return None
    if journal is None:
        return None
    if _state_sha(state_dir) == journal.state_sha256:
        _finish(state_dir, {state_dir / n: t for n, t in journal.rewrites.items()},
                last_try=True)
        log.warning("finished an interrupted cycle commit in %s", state_dir)
        return "finished"
    for name, size in journal.append_sizes.items():
        try:
            storage.truncate_to(state_dir / name, size, root=state_dir)
        except (OSError, StateError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StateError(
                f"cannot roll back the interrupted cycle in {state_dir}: {state_dir / name}: "
                f"{reason}. Action: make that path a regular writable file again (or move "
                f"it away), then re-run; {paths.journal} is kept until then",
                path=state_dir / name) from exc
    storage.unlink(paths.journal, root=state_dir)
    log.warning("rolled back an interrupted cycle in %s", state_dir)
    return "rolled_back"
