"""Loaders: runtime events, rollouts, WASM deliverables and channel logs as polars frames.

Event logs are read rotated backups first (oldest first), then the active
file, through the incremental cache of :mod:`tau_ops.analysis.cache` when the
log's folder allows it. Invalid lines are skipped, counted in
:attr:`EventLog.invalid_lines` and logged. Several sources (state dirs, events
files, snapshot archives: :mod:`tau_ops.analysis.sources`) give a fleet frame
with a ``source`` column naming each one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from tau_ops import jsonio, storage
from tau_ops.analysis import _parse
from tau_ops.analysis.cache import CACHE_DIR, EventCache, FileEvents
from tau_ops.analysis.sources import (
    SourceItem,
    archive_batches,
    given_sources,
    opened_archive,
    pinned_batches,
    state_dir_of,
)
from tau_ops.channel_store import LOG_FILE, channel_dir, channel_dirs, record_blueprint_id
from tau_ops.errors import InputError
from tau_ops.readview import (
    Pin,
    pin_files,
    read_committed_jsonl,
    read_consistently,
    read_prefix,
    read_state_view,
)
from tau_ops.state import (
    EVENTS_FILE,
    JOURNAL_FILE,
    STATE_FILE,
    StatePaths,
    committed_sizes,
    read_state,
)

log = logging.getLogger("tau_ops")

EventSource = str | Path | Sequence[str | Path]
"""A state dir, an events file, a snapshot archive (``*.tar.gz``), or a list of them."""

EVENT_SCHEMA = _parse.EVENT_SCHEMA


@dataclass(frozen=True)
class EventLog:
    """Loaded events plus what the loader skipped and read.

    Attributes
    ----------
    frame : polars.DataFrame
        The events, as :func:`load_events` returns them.
    invalid_lines : int
        Lines skipped because they are not valid cycle reports.
    files : tuple of Path
        The event files read, oldest first.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> _ = (state_dir / "runtime-events.jsonl").write_text(json.dumps({
    ...     "timestamp_unix_ms": 1767225600000, "health_state": "healthy", "health_reason": "ok",
    ...     "reason_codes": ["healthy_cycle"], "applied_cases": 2}) + "\\nnot json\\n")
    >>> log = read_events(state_dir)
    >>> log.frame.height, log.invalid_lines, [p.name for p in log.files]
    (1, 1, ['runtime-events.jsonl'])
    """

    frame: pl.DataFrame
    invalid_lines: int
    files: tuple[Path, ...]
    """Files read (for an archive: paths inside its temporary copy, gone once read)."""


@dataclass(frozen=True)
class _Log:
    """One source: its display name and its files, oldest first."""

    name: str
    active: Path
    files: list[Path]
    cacheable: bool = True


def _regular_files(files: list[Path]) -> list[Path]:
    """``files``, each checked to be a regular file (a link is followed) before any read.

    Opening a FIFO would block and a device never ends, so both are refused
    here, once, for every reader of the analysis path (the limits page).
    """
    for path in files:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"cannot read {path}: it is a {jsonio._kind(info.st_mode)}, not a "
                             "regular file")
    return files


def _log(item: SourceItem, opened: dict[str, Path]) -> _Log:
    if item.archive:
        active = opened[item.name] / EVENTS_FILE
        return _Log(item.name, active, _regular_files(storage.rotated_files(active)),
                    cacheable=False)
    active = item.path / EVENTS_FILE if item.path.is_dir() else item.path
    return _Log(item.name, active, _regular_files(storage.rotated_files(active)))


def _cache_for(active: Path) -> EventCache:
    return EventCache(active.parent / CACHE_DIR, active.name)


def _sync(logv: _Log, *, cache: bool) -> list[FileEvents]:
    # New segments are written after the load returns (off its critical path).
    store = EventCache(logv.active.parent / CACHE_DIR, logv.active.name, background=True)
    cache = cache and logv.cacheable
    results = []
    # Lines of a cycle that has not committed (yet, or ever) are left out, uncached.
    committed = committed_sizes(logv.active.parent) if logv.active.name == EVENTS_FILE else {}
    for path in logv.files:
        try:
            if path in committed:
                frame, invalid = _parse.parse_bytes(read_prefix(path, committed[path]))
                results.append(FileEvents(path, frames=[frame], invalid=invalid))
            elif cache:
                results.append(store.sync(path))
            else:
                frame, invalid = _parse.parse_file(path)
                results.append(FileEvents(path, frames=[frame], invalid=invalid))
        except FileNotFoundError:  # rotated away between listing and reading
            continue
        except OSError as exc:
            raise InputError(f"cannot read events file {path}: {exc.strerror}", path=path) from exc
    if cache:
        store.commit_in_background(logv.files)
    return results


def _watched(active: Path) -> list[Path]:
    """Files besides the log whose change means a cycle committed or rolled back."""
    if active.name != EVENTS_FILE:
        return []
    return [active.parent / STATE_FILE, active.parent / JOURNAL_FILE]


def _with_source(frame: pl.DataFrame | pl.LazyFrame, name: str, names: list[str]) -> Any:
    return frame.with_columns(pl.lit(name, dtype=pl.Enum(names)).alias("source"))


def _read_file(parts: FileEvents, store: EventCache) -> tuple[pl.DataFrame, int]:
    frames = list(parts.frames)
    if parts.parquet:
        try:
            cached = _parse.from_stored(pl.scan_parquet(parts.parquet)).collect()
        except Exception:  # noqa: BLE001 - an unreadable segment: rebuild from the log
            log.info("analysis cache of %s unreadable; parsing the log", parts.path)
            store.drop(parts.path)
            fresh = store.sync(parts.path)
            return _read_file(fresh, _NoRetry(store))
        frames.insert(0, cached)
    if not frames:
        return _parse.empty_frame(), parts.invalid
    return pl.concat(frames, how="vertical", rechunk=False), parts.invalid


class _NoRetry(EventCache):
    """A cache whose second failure parses without the cache, so a loop cannot happen."""

    def __init__(self, inner: EventCache) -> None:
        super().__init__(inner.folder, inner.family)

    def sync(self, path: Path, *, writable: bool = True) -> FileEvents:
        frame, invalid = _parse.parse_file(path)
        return FileEvents(path, frames=[frame], invalid=invalid)


def read_events(source: EventSource, *, cache: bool = True) -> EventLog:
    """Load events with the count of invalid lines skipped and the files read.

    A load that overlaps a rotation or a commit is retried (see
    :func:`tau_ops.readview.read_consistently`); only committed cycles are read.
    A snapshot archive is verified, then read from a private temporary copy
    of its event files (:func:`tau_ops.analysis.sources.opened_archive`).

    Parameters
    ----------
    source : str, Path or sequence of them
        A state dir, an events file (``runtime-events.jsonl``; its rotated
        backups are read too), a snapshot archive (``*.tar.gz``), or a
        list of them for a fleet frame.
    cache : bool
        Use the Parquet cache in the log's folder (default True).

    Returns
    -------
    EventLog
        ``frame`` (columns as for :func:`load_events`), ``invalid_lines`` and ``files``.

    Raises
    ------
    InputError
        A source is neither a state dir nor an events file, an events file
        cannot be read (a link, a special file, over the size limit), an
        archive fails verification, or one source is given twice.
    StateError
        The files kept changing while being read.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> _ = (state_dir / "runtime-events.jsonl").write_text(json.dumps({
    ...     "timestamp_unix_ms": 1767225600000, "health_state": "healthy", "health_reason": "ok",
    ...     "reason_codes": ["healthy_cycle"], "applied_cases": 2}) + "\\nnot json\\n")
    >>> read_events(state_dir).invalid_lines
    1
    """
    items = given_sources(source)
    with contextlib.ExitStack() as stack:
        opened = {i.name: stack.enter_context(opened_archive(i.path)) for i in items if i.archive}

        def listing() -> list[Path]:
            found = []
            for item in items:
                logv = _log(item, opened)
                found += [*_watched(logv.active), *logv.files]
            return found

        return read_consistently(
            listing, lambda _files: _read_events([_log(i, opened) for i in items], cache=cache),
            what="event log")


def _read_events(logs: list[_Log], *, cache: bool) -> EventLog:
    names = [item.name for item in logs]
    frames: list[pl.DataFrame] = []
    invalid = 0
    files: list[Path] = []
    for item in logs:
        store = _cache_for(item.active)
        for parts in _sync(item, cache=cache):
            frame, bad = _read_file(parts, store)
            files.append(parts.path)
            invalid += bad
            if bad:  # an archive's files are a temporary copy: name the archive's member
                where = parts.path if item.cacheable else f"{item.name}:{parts.path.name}"
                log.warning("skipped %d invalid line(s) in %s", bad, where)
            frame = frame.select(list(EVENT_SCHEMA)).cast(EVENT_SCHEMA)  # type: ignore[arg-type]
            frames.append(_with_source(frame, item.name, names) if len(logs) > 1 else frame)
    if not frames:
        frame = _parse.empty_frame()
        if len(logs) > 1:
            frame = _with_source(frame, "", names).clear()
    else:
        frame = pl.concat(frames, how="vertical", rechunk=False)  # no copy: one chunk per file
    return EventLog(frame, invalid, tuple(files))


def load_events(source: EventSource, *, cache: bool = True) -> pl.DataFrame:
    """Events of a state dir, an events file, or a list of either, oldest first.

    Invalid lines are skipped and logged; :func:`read_events` also returns
    their count. With several sources a ``source`` column names each one.

    Parameters
    ----------
    source : str, Path or sequence of them
        A state dir, an events file (``runtime-events.jsonl``; its rotated
        backups are read too), or a list of either for a fleet frame.
    cache : bool
        Use the Parquet cache in the log's folder (default True).

    Returns
    -------
    polars.DataFrame
        Columns (:data:`EVENT_SCHEMA`): ``timestamp`` (Datetime ms, UTC, the
        cycle's end), ``health_state`` (Enum healthy/degraded/failing),
        ``health_reason`` (String), ``reason_codes`` (List of Enum), the
        counters ``discovered_cases`` ... ``cloud_rollouts``, ``backlog_cases``
        and ``failure_streak`` (Int32, cases/cycles) and ``cycle_duration_ms``
        (Int32, ms); with several sources a leading-order ``source`` column
        (Enum of the source names). Oldest first.

    Raises
    ------
    InputError
        A source is neither a state dir nor an events file, or an events file
        cannot be read (a link, a special file, over the size limit).
    StateError
        The files kept changing while being read.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> _ = (state_dir / "runtime-events.jsonl").write_text(json.dumps({
    ...     "timestamp_unix_ms": 1767225600000, "health_state": "healthy", "health_reason": "ok",
    ...     "reason_codes": ["healthy_cycle"], "applied_cases": 2}) + "\\nnot json\\n")
    >>> load_events(state_dir).select("health_state", "applied_cases").rows()
    [('healthy', 2)]
    """
    return read_events(source, cache=cache).frame


Batches = Callable[[list[str]], Iterator[tuple[pl.DataFrame, int]]]


def _json_scan(batches: Batches, what: str) -> pl.LazyFrame:
    """A lazy scan of JSONL files (duckdb) that parses only the projected columns."""

    def generate(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        columns = with_columns or list(EVENT_SCHEMA)
        invalid = 0
        left = n_rows
        for frame, bad in batches(columns):
            invalid += bad
            if predicate is not None:
                frame = frame.filter(predicate)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame
            if left is not None and left <= 0:
                break
        if invalid:
            log.warning("skipped %d invalid line(s) in %s", invalid, what)

    return register_io_source(generate, schema=EVENT_SCHEMA, explain_name="tau-ops events")


def _dir_scan(logv: _Log, *, cache: bool) -> list[pl.LazyFrame]:
    """The pieces of one state dir or events file, pinned as one consistent view now.

    Cached files are read now (from Parquet); the others are pinned by
    identity and parsed when the plan runs, exactly as they were now, even if
    a rotation renamed them meanwhile (:class:`tau_ops.readview.Pin`).
    """
    store = _cache_for(logv.active)
    what = f"event log {logv.name}"

    def relist() -> list[Path]:
        return storage.rotated_files(logv.active)

    def plan(files: list[Path]) -> list[pl.LazyFrame]:
        cut = committed_sizes(logv.active.parent) if _watched(logv.active) else {}
        pins = pin_files(relist(), cut)
        pieces: list[pl.LazyFrame] = []
        run: list[Pin] = []
        for pin in pins:
            lazy = _cached_scan(store, pin.path) if cache and pin.path not in cut else None
            if lazy is None:
                run.append(pin)
                continue
            if run:  # keep file order: parse the run of uncached files before this one
                pieces.append(_pinned_scan(run, relist, logv.active, what))
                run = []
            pieces.append(lazy)
        if run:
            pieces.append(_pinned_scan(run, relist, logv.active, what))
        return pieces

    return read_consistently(lambda: [*relist(), *_watched(logv.active)], plan, what=what)


def _pinned_scan(
    pins: list[Pin], relist: Callable[[], list[Path]], growing: Path, what: str
) -> pl.LazyFrame:
    return _json_scan(
        lambda columns: pinned_batches(pins, relist, growing, what, columns),
        ", ".join(str(pin.path) for pin in pins))


def _archive_scan(archive: Path) -> pl.LazyFrame:
    """A snapshot archive's events, verified and copied privately when the plan runs."""
    return _json_scan(lambda columns: archive_batches(archive, columns), str(archive))


def scan_events(source: EventSource, *, cache: bool = True) -> pl.LazyFrame:
    """A lazy events frame for logs larger than memory (same rows as :func:`load_events`).

    The view is taken when this is called: files the cache already covers are
    scanned from Parquet (new bytes are parsed and added first); the others
    are pinned (committed bytes only) and parsed when the plan runs, reading
    only the columns the query needs, and are not cached. A rotation between
    this call and the run does not change the rows; a pinned file deleted
    meanwhile (rotated out of the backups) makes the run raise
    :class:`tau_ops.errors.StateError`. A snapshot archive is verified and
    read when the plan runs.

    Parameters
    ----------
    source : str, Path or sequence of them
        A state dir, an events file (``runtime-events.jsonl``; its rotated
        backups are read too), a snapshot archive (``*.tar.gz``), or a
        list of them for a fleet frame.
    cache : bool
        Use the Parquet cache in the log's folder (default True).

    Returns
    -------
    polars.LazyFrame
        The columns of :func:`load_events`; invalid lines are skipped (and
        logged) when the plan runs.

    Raises
    ------
    InputError
        A source is neither a state dir nor an events file, or one source is
        given twice; an archive failing verification, when the plan runs.
    StateError
        When the plan runs: a pinned file was rotated away since this call.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> state_dir = Path(tempfile.mkdtemp())
    >>> _ = (state_dir / "runtime-events.jsonl").write_text(json.dumps({
    ...     "timestamp_unix_ms": 1767225600000, "health_state": "healthy", "health_reason": "ok",
    ...     "reason_codes": ["healthy_cycle"], "applied_cases": 2}) + "\\nnot json\\n")
    >>> scan_events(state_dir).select("applied_cases").collect().rows()
    [(2,)]
    """
    items = given_sources(source)
    names = [item.name for item in items]
    parts: list[pl.LazyFrame] = []
    for item in items:
        pieces = ([_archive_scan(item.path)] if item.archive
                  else _dir_scan(_log(item, {}), cache=cache))
        for lazy in pieces:
            parts.append(_with_source(lazy, item.name, names) if len(items) > 1 else lazy)
    if not parts:
        frame = _parse.empty_frame()
        if len(items) > 1:
            frame = _with_source(frame, "", names).clear()
        return frame.lazy()
    return pl.concat(parts, how="vertical")


def _cached_scan(store: EventCache, path: Path) -> pl.LazyFrame | None:
    """Parquet scan of ``path`` when its cache entry exists, after adding new bytes."""
    try:
        if not store.has_entry(path):
            return None
        parts = store.sync(path)
    except OSError:
        return None
    if parts.invalid:
        log.warning("skipped %d invalid line(s) in %s", parts.invalid, path)
    lazies = [_parse.from_stored(pl.scan_parquet(parts.parquet))] if parts.parquet else []
    lazies += [frame.lazy() for frame in parts.frames]
    if not lazies:
        return _parse.empty_frame().lazy()
    return pl.concat(lazies, how="vertical")


def load_rollouts(state_dir: Path) -> pl.DataFrame:
    """The rollout records of ``state.json``, one row per case key (empty when none).

    Parameters
    ----------
    state_dir : Path
        The deployment state dir, or a snapshot archive (verified).

    Returns
    -------
    polars.DataFrame
        The fields of :class:`~tau_ops.models.RolloutRecord` (String, except
        ``artifact_size_bytes`` Int64 bytes, ``replicas`` and ``status_code``
        Int32, ``runtime_constraints`` List of String, ``updated_unix_ms`` Int64
        Unix ms) plus ``updated`` (Datetime ms, UTC), sorted by ``case_key``.

    Raises
    ------
    StateError
        ``state.json`` cannot be read or parsed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> frame = load_rollouts(Path(tempfile.mkdtemp()))
    >>> frame.height, frame.columns[0], frame.columns[-1]
    (0, 'case_key', 'updated')
    """
    with state_dir_of(state_dir) as folder:
        state = read_state(folder)
    rows = [r.model_dump(mode="json") for r in state.rollouts] if state else []
    schema: dict[str, Any] = {
        "case_key": pl.String, "case_id": pl.String, "deploy_target": pl.String,
        "runtime_profile": pl.String, "blueprint_id": pl.String, "environment": pl.String,
        "region": pl.String, "artifact": pl.String, "artifact_sha256": pl.String,
        "artifact_size_bytes": pl.Int64, "artifact_manifest": pl.String,
        "runtime_constraints": pl.List(pl.String), "replicas": pl.Int32,
        "rollout_strategy": pl.String, "status_code": pl.Int32, "outcome": pl.String,
        "error_code": pl.String, "updated_unix_ms": pl.Int64,
    }
    frame = pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=schema,
                         orient="row")
    return frame.with_columns(
        pl.col("updated_unix_ms").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
        .alias("updated")
    )


def load_wasm_deliverables(state_dir: Path) -> pl.DataFrame:
    """``state.json`` WASM deliverables, one row each, fields as recorded (empty when none).

    Parameters
    ----------
    state_dir : Path
        The deployment state dir, or a snapshot archive (verified).

    Returns
    -------
    polars.DataFrame
        One column per recorded field (``blueprint_id``, ``artifact_sha256``,
        ``artifact_size_bytes`` in bytes, ``manifest_path``...), types inferred;
        only ``blueprint_id`` and ``artifact_sha256`` (String) when empty.

    Raises
    ------
    StateError
        ``state.json`` cannot be read or parsed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> load_wasm_deliverables(Path(tempfile.mkdtemp())).columns
    ['blueprint_id', 'artifact_sha256']
    """
    with state_dir_of(state_dir) as folder:
        state = read_state(folder)
    rows = list(state.wasm_deliverables) if state else []
    if not rows:
        return pl.DataFrame(schema={"blueprint_id": pl.String, "artifact_sha256": pl.String})
    return pl.DataFrame(rows, infer_schema_length=None)


CHANNEL_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("ms", "UTC"),
    "blueprint_id": pl.String(),
    "event_key": pl.String(),
    "direction": pl.String(),
    "source": pl.String(),
    "outcome": pl.String(),
    "case_id": pl.String(),
    "target": pl.String(),
    "runtime": pl.String(),
    "status_code": pl.Int32(),
    "error_code": pl.String(),
    "artifact": pl.String(),
}


def load_channel_log(state_dir: Path, blueprint_id: str | None = None) -> pl.DataFrame:
    """Channel-store ``log.jsonl`` lines of one blueprint, or of all, with payload fields flat.

    Parameters
    ----------
    state_dir : Path
        The deployment state dir (its ``channel-store``).
    blueprint_id : str, optional
        One blueprint's channel; all channels when None (default).

    Returns
    -------
    polars.DataFrame
        Oldest first: ``timestamp`` (Datetime ms, UTC), ``blueprint_id``,
        ``event_key``, ``direction``, ``source``, ``outcome``, ``case_id``,
        ``target``, ``runtime`` (String), ``status_code`` (Int32, HTTP),
        ``error_code`` and ``artifact`` (String); null where a line lacks the field.

    Raises
    ------
    StateError
        The state dir kept changing (commits or rotations) during every read
        attempt (:func:`tau_ops.readview.read_state_view`).
    OSError
        A ``log.jsonl`` is not a regular file, over its size limit, or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> load_channel_log(Path(tempfile.mkdtemp())).shape
    (0, 12)
    """
    root = StatePaths(Path(state_dir)).channel_store
    folders = channel_dirs(root) if blueprint_id is None else [channel_dir(root, blueprint_id)]
    wanted = None if blueprint_id is None else blueprint_id.strip()

    def read() -> list[tuple[Path, list[dict[str, Any]], int]]:
        committed = committed_sizes(state_dir)  # lines of an uncommitted cycle are left out
        return [(folder, *read_committed_jsonl(folder / LOG_FILE, committed))
                for folder in folders]

    rows: list[dict[str, Any]] = []
    for folder, records, invalid in read_state_view(state_dir, read,
                                                    what=f"channel store of {state_dir}"):
        if invalid:
            log.warning("skipped %d invalid line(s) in %s", invalid, folder / LOG_FILE)
        for record in records:
            payload = record.get("payload")
            payload = payload if isinstance(payload, dict) else {}
            named = payload.get("blueprint_id")
            # A seed-laid-out folder may be shared: keep only the asked blueprint's lines.
            if wanted is not None and isinstance(named, str) and named.strip() != wanted:
                continue
            owner = record_blueprint_id(record, folder)
            ts = record.get("timestamp_unix_ms")
            rows.append({
                "timestamp": ts if isinstance(ts, int) else None,
                "blueprint_id": owner,
                "event_key": _text(record.get("event_key")),
                "direction": _text(record.get("direction")),
                "source": _text(record.get("source")),
                "outcome": _text(payload.get("outcome")),
                "case_id": _text(payload.get("case_id")),
                # The seed's payload keys; "target"/"runtime" in older tau-ops logs.
                "target": _text(payload.get("deploy_target", payload.get("target"))),
                "runtime": _text(payload.get("runtime_profile", payload.get("runtime"))),
                "status_code": payload.get("status_code")
                if isinstance(payload.get("status_code"), int) else None,
                "error_code": _text(payload.get("error_code")),
                "artifact": _text(payload.get("artifact")),
            })
    frame = pl.DataFrame(rows, schema={**CHANNEL_SCHEMA, "timestamp": pl.Int64}, orient="row")
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    ).sort("timestamp", maintain_order=True)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
