"""Parsed status inputs of one state dir, cached on the identity of the files they come from."""

from __future__ import annotations

import os
from pathlib import Path

from tau_ops.errors import StateError
from tau_ops.state import EVENTS_FILE, STATE_FILE
from tau_ops.status import StatusInputs, read_status_inputs

FileKey = tuple[int, int, int, int]
Quick = tuple[FileKey | None, FileKey | None, FileKey | None]
Signature = tuple[Quick, tuple[tuple[str, FileKey], ...]]


def _stat_key(path: str) -> FileKey | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot stat {path}: {exc.strerror}", path=path) from exc
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_backup(name: str) -> bool:
    """``runtime-events.jsonl.N`` (N >= 1), as :func:`tau_ops.storage.rotated_files` reads them."""
    suffix = name[len(EVENTS_FILE) + 1:] if name.startswith(EVENTS_FILE + ".") else ""
    return suffix.isdigit() and int(suffix) > 0


def fresh_error(error: StateError) -> StateError:
    """A new copy of a cached error: re-raising one instance would grow its traceback forever."""
    return StateError(error.message, path=error.path)


class StatusCache:
    """Parsed status inputs of one state dir, re-read only when a file they come from changes.

    The key is the identity (inode, size, mtime, ctime) of ``state.json``, of
    every event file and of the folder itself, so an atomic replace, an append
    or a rotation all invalidate it. Each poll costs three ``stat`` calls; the
    folder is listed again only when one of them changed (a rotation always
    replaces ``runtime-events.jsonl``). A read that failed (corrupt state) is
    cached the same way, so a broken file is not re-parsed on every poll, and
    its fix is seen on the next one.

    Parameters
    ----------
    state_dir : Path or str
        The state dir whose ``state.json`` and ``runtime-events.jsonl*`` the
        status documents read (SPEC section 1); it need not exist yet.

    Attributes
    ----------
    state_dir : Path
        The state dir, as a path.
    reads : int
        How many times the files were read and parsed (a miss count).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import RunnerConfig, load_fixture, run_cycle
    >>> from tau_ops._data import data_path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cache = StatusCache(tmp.name)
    >>> cache.get().state is None, cache.get().state is None, cache.reads  # nothing yet
    (True, True, 1)
    >>> fixture = load_fixture(data_path("rollout-pass.json"))
    >>> _ = run_cycle(fixture, RunnerConfig(state_dir=tmp.name))
    >>> len(cache.get().state.rollouts), cache.reads  # the cycle changed the files
    (3, 2)
    >>> tmp.cleanup()
    """

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self._dir = str(self.state_dir)
        self._state = os.path.join(self._dir, STATE_FILE)
        self._events = os.path.join(self._dir, EVENTS_FILE)
        # single attributes, so concurrent refreshes never pair a key with another read's value
        self._signature: Signature | None = None
        self._entry: tuple[Signature, StatusInputs | StateError] | None = None
        self.reads = 0

    def _backups(self) -> tuple[tuple[str, FileKey], ...]:
        found: list[tuple[str, FileKey]] = []
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise StateError(f"cannot list {self._dir}: {exc.strerror}", path=self._dir) from exc
        for name in sorted(filter(_is_backup, names)):
            key = _stat_key(os.path.join(self._dir, name))
            if key is not None:  # None: rotated away since the listing
                found.append((name, key))
        return tuple(found)

    def signature(self) -> Signature:
        """The current identity of every file the reports read."""
        quick = (_stat_key(self._dir), _stat_key(self._state), _stat_key(self._events))
        last = self._signature
        if last is not None and last[0] == quick:
            return last
        current = (quick, self._backups())
        self._signature = current
        return current

    def _read(self) -> StatusInputs | StateError:
        self.reads += 1
        try:
            return read_status_inputs(self.state_dir)
        except StateError as exc:
            return exc

    def cached(self) -> StatusInputs | StateError | None:
        """The cached value when the files are unchanged, else None (read needed)."""
        entry = self._entry
        return entry[1] if entry is not None and entry[0] == self.signature() else None

    def refresh(self) -> StatusInputs | StateError:
        """Read the files (the signature is taken first, so a later change is never missed)."""
        key = self.signature()
        value = self._read()
        self._entry = (key, value)
        return value

    def get(self) -> StatusInputs:
        """Current inputs, from cache when possible.

        Returns
        -------
        StatusInputs
            The parsed state (``None`` before the first cycle), pause marker
            and event files.

        Raises
        ------
        StateError
            ``state.json`` is corrupt or holds impossible values, or the
            folder cannot be listed (a fresh error each call).
        """
        value = self.cached()
        if value is None:
            value = self.refresh()
        if isinstance(value, StateError):
            raise fresh_error(value)
        return value
