"""Export events as a Hive-partitioned Parquet dataset for engines beyond one machine.

``tau-ops export events --to DIR SOURCE...`` writes every committed cycle of
each source to ``DIR/source=<name>/date=YYYY-MM-DD/part-0.parquet`` (UTC
dates), one file per partition. Spark, duckdb, polars and pyarrow read the
folder as one table with ``source`` and ``date`` columns.

A cycle is known by its values: two lines of one source that read to the
same values (key order, spacing and unknown keys aside) are one cycle (one
row), since nothing kept tells them apart; ``tau-ops status`` counts lines.

Incremental and kill-safe without any bookkeeping file: every date the log
touches is merged with its partition, in date order, each partition replaced
atomically (a temporary file beside it, then a rename) by the union of what it
held and the new rows, without duplicate cycles. A day whose rows match the
fingerprint stored in its partition's footer (a set-hash of its rows) is
skipped without reading the partition, so a second export with nothing new
reads only the log and the footers. Lines whose timestamps fall on an earlier
day than the newest exported one are added to that day's partition; an export
killed at any moment leaves a dataset that the next export completes exactly.

Partition names and the write guards are :mod:`tau_ops.analysis.export_sources`:
a ``NAME=PATH`` name is limited to ``[A-Za-z0-9._-]``, a name derived from a
path escapes every other byte as ``_XX``, one source given twice is refused by
file identity, and a local destination may hold no symbolic link under its
``source=`` folders. The partition columns are read back with fixed types
(:data:`PARTITION_SCHEMA`): ``source`` a string, ``date`` a date. In duckdb
say so with ``hive_types = {'source': VARCHAR, 'date': DATE}``.

``DIR`` may be a local path or any URI pyarrow's filesystems open
(``file://``, ``s3://``, ``gs://``), with credentials from the environment
those filesystems read (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``). Only
local paths are tested here: an object store renames by copying, so a partition
there is replaced by a copy of its finished temporary object. The destination
is probed before any source is read: one that cannot be reached (no network,
no credentials) is refused with its URL. A ``gs://`` URL retries for at most
:data:`GCS_RETRY_LIMIT_S` seconds unless it sets ``?retry_limit_seconds=N``
itself (Google's client otherwise keeps retrying for 15 minutes).
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from tau_ops.analysis.cache import wait_for_writes
from tau_ops.analysis.export_sources import (
    check_local_destination,
    parse_sources,
    refuse_links,
    source_name,
)
from tau_ops.analysis.loaders import load_events
from tau_ops.errors import InputError, UsageError

__all__ = ["EXPORT_SCHEMA", "PARTITION_SCHEMA", "ExportReport", "ExportedSource",
           "export_events", "scan_export", "source_name"]

PART_FILE = "part-0.parquet"
_ROWS_KEY = b"tau_ops.rows"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
GCS_RETRY_LIMIT_S = 10
"""Seconds a ``gs://`` destination retries a failing request (no credentials, no network)
before the export is refused, unless the URL sets ``retry_limit_seconds`` itself."""

EXPORT_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("ms", "UTC"),
    "health_state": pl.String(),
    "health_reason": pl.String(),
    "reason_codes": pl.List(pl.String()),
}
"""Leading columns of an exported file (then the counters, as ``Int32``); the
partition columns ``source`` (string) and ``date`` (date) come from the paths."""


PARTITION_SCHEMA: dict[str, pl.DataType] = {"source": pl.String(), "date": pl.Date()}
"""Types of the partition columns, given to every reader: never inferred, so a source
named ``007`` reads back as the string ``"007"``, not the number 7."""


class ExportedSource(BaseModel):
    """What one source contributed to an export (a row of :class:`ExportReport`).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import RunnerConfig, load_fixture, run_cycle
    >>> from tau_ops._data import data_path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     state = Path(tmp) / "state"
    ...     _ = run_cycle(load_fixture(data_path("rollout-pass.json")),
    ...                   RunnerConfig(state_dir=state), clock=lambda: 1_767_225_600_000)
    ...     row = export_events([f"iad={state}"], f"{tmp}/events").sources[0]
    >>> row.source, row.cycles_read, row.cycles_added, row.partitions_written
    ('iad', 1, 1, 1)

    Exporting the same source again reads the cycle and adds nothing
    (``cycles_added`` 0, ``partitions_written`` 0).
    """

    source: str = Field(description="partition value (`source=...`): the given NAME, or the "
                        "path with each byte outside A-Z a-z 0-9 . - escaped as _XX")
    path: str = Field(description="the state dir or events file read")
    cycles_read: int = Field(description="valid cycles in the source's event log")
    cycles_added: int = Field(description="cycles not in the dataset before")
    partitions_written: int = Field(description="partition files (re)written")


class ExportReport(BaseModel):
    """``tau-ops export events --json``: what an export added, per source and in all.

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops import RunnerConfig, load_fixture, run_cycle
    >>> from tau_ops._data import data_path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     state = Path(tmp) / "state"
    ...     _ = run_cycle(load_fixture(data_path("rollout-pass.json")),
    ...                   RunnerConfig(state_dir=state), clock=lambda: 1_767_225_600_000)
    ...     report = export_events([str(state)], f"{tmp}/events")
    ...     files = sorted(p.relative_to(tmp).as_posix() for p in Path(tmp, "events").rglob("*"))
    >>> report.cycles_added, report.partitions_written, files[-1].split("/")[-2:]
    (1, 1, ['date=2026-01-01', 'part-0.parquet'])
    """

    destination: str = Field(description="the dataset root as given")
    sources: list[ExportedSource] = Field(description="one row per source, in the order given")
    cycles_added: int = Field(description="new cycles across all sources")
    partitions_written: int = Field(description="partition files (re)written")


def _bounded(destination: str) -> str:
    """A ``gs://`` URL with a retry limit (:data:`GCS_RETRY_LIMIT_S`) unless it has one."""
    parts = urllib.parse.urlsplit(destination)
    if parts.scheme not in ("gs", "gcs"):
        return destination
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "retry_limit_seconds" for key, _ in query):
        return destination
    query.append(("retry_limit_seconds", str(GCS_RETRY_LIMIT_S)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _filesystem(destination: str) -> tuple[pafs.FileSystem, str]:
    """Open and probe the destination; InputError naming it when it cannot be used."""
    scheme = _SCHEME.match(destination)
    if scheme and "://" not in destination:
        raise UsageError(f"export destination {destination} looks like a URL without '//': "
                         "write file:///absolute/path, or a path without a scheme")
    if scheme and scheme.group(1).lower() == "mock":
        raise UsageError(f"export destination {destination} is pyarrow's in-memory test "
                         "filesystem: nothing written there is kept")
    try:
        if "://" in destination:
            fs, root = pafs.FileSystem.from_uri(_bounded(destination))
        else:
            fs, root = pafs.LocalFileSystem(), str(Path(destination).absolute())
        root = root.rstrip("/")
        if "://" in destination and not root.strip("/"):
            raise ValueError("it names no bucket or folder")
        if "://" in destination:  # reach it now, before reading any source
            fs.get_file_info(root)
    except (pa.ArrowException, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"cannot open export destination {destination}: "
                         f"{reason[:300]}") from exc
    return fs, root


def _export_frame(frame: pl.DataFrame) -> pl.DataFrame:
    counters = [c for c in frame.columns if c not in EXPORT_SCHEMA and c != "source"]
    return frame.select(
        pl.col("timestamp"),
        pl.col("health_state").cast(pl.String),
        pl.col("health_reason").cast(pl.String),
        pl.col("reason_codes").cast(pl.List(pl.String)),
        *[pl.col(c) for c in counters],
    )


def _fingerprint(frame: pl.DataFrame) -> str:
    """A set-hash of the rows (unique already): polars version, count, sums of hash halves."""
    hashed = frame.select(pl.struct(pl.all()).hash(seed=0).alias("h"))
    sums = hashed.select((pl.col("h") & 0xFFFFFFFF).sum(), (pl.col("h") // (1 << 32)).sum()
                         .alias("high")).row(0)
    return f"{pl.__version__}:{frame.height}:{sums[0]}:{sums[1]}"


def _write_partition(fs: pafs.FileSystem, folder: str, frame: pl.DataFrame) -> None:
    fs.create_dir(folder, recursive=True)
    final = f"{folder}/{PART_FILE}"
    tmp = f"{folder}/.{PART_FILE}.{uuid.uuid4().hex}.tmp"
    table = frame.to_arrow()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _ROWS_KEY: _fingerprint(frame).encode()})
    try:
        with fs.open_output_stream(tmp) as sink:
            pq.write_table(table, sink, compression="zstd")
        fs.move(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError, pa.ArrowException):
            fs.delete_file(tmp)
        raise


def _damaged(final: str, exc: Exception) -> InputError:
    reason = " ".join(str(exc).split())[:200]
    return InputError(f"exported partition {final} cannot be read ({reason}): move it away "
                      "and export again", path=final)


def _stored_fingerprint(fs: pafs.FileSystem, final: str) -> str | None:
    """The fingerprint in a partition file's footer (None: no file, written without one, or
    a file whose row count is not the fingerprint's: rewritten by another tool)."""
    if fs.get_file_info(final).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_file(final) as handle:
            footer = pq.read_metadata(handle)
        metadata = footer.schema.to_arrow_schema().metadata or {}
    except (pa.ArrowException, ValueError) as exc:
        raise _damaged(final, exc) from exc
    value = metadata.get(_ROWS_KEY)
    if value is None:
        return None
    text = value.decode(errors="replace")
    count = text.split(":")[1] if text.count(":") == 3 else ""
    return text if count == str(footer.num_rows) else None


def _read_partition(fs: pafs.FileSystem, folder: str) -> pl.DataFrame | None:
    final = f"{folder}/{PART_FILE}"
    if fs.get_file_info(final).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_file(final) as handle:
            frame = pl.from_arrow(pq.read_table(handle))
    except (pa.ArrowException, ValueError) as exc:
        raise _damaged(final, exc) from exc
    assert isinstance(frame, pl.DataFrame)
    return frame


def _merge(final: str, old: pl.DataFrame | None, new: pl.DataFrame) -> pl.DataFrame:
    """The union of a partition's rows and the new ones, without duplicates, oldest first."""
    try:
        merged = new if old is None else pl.concat([old.select(new.columns), new],
                                                   how="vertical_relaxed")
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise _damaged(final, exc) from exc
    return merged.unique(maintain_order=True).sort("timestamp", maintain_order=True)


def _check_dates(fs: pafs.FileSystem, folder: str) -> None:
    """Refuse a ``date=`` folder that names no date (a stray folder would read back wrong)."""
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return
    for entry in fs.get_file_info(pafs.FileSelector(folder)):
        if entry.base_name.startswith("date="):
            try:
                date.fromisoformat(entry.base_name.removeprefix("date="))
            except ValueError as exc:
                raise InputError(f"export destination holds {entry.path}, which names no "
                                 "date (YYYY-MM-DD): move it away", path=entry.path) from exc


def _clean_temporaries(fs: pafs.FileSystem, folder: str) -> None:
    info = fs.get_file_info(folder)
    if info.type != pafs.FileType.Directory:
        return
    for entry in fs.get_file_info(pafs.FileSelector(folder, recursive=True)):
        if entry.base_name.startswith(f".{PART_FILE}.") and entry.base_name.endswith(".tmp"):
            fs.delete_file(entry.path)


def export_events(sources: Sequence[str], to: str, *, cache: bool = True) -> ExportReport:
    """Export the events of one or many sources to a Hive-partitioned Parquet dataset.

    Parameters
    ----------
    sources : sequence of str
        State dirs, events files or snapshot archives, each optionally named
        ``NAME=PATH`` (``NAME`` in ``[A-Za-z0-9._-]``; otherwise the path,
        each other byte escaped as ``_XX``, names the partition).
    to : str
        The dataset root: a local path or a pyarrow filesystem URI.
    cache : bool, default True
        Use the analysis cache beside each log when its folder allows it.

    Returns
    -------
    ExportReport
        Per source: cycles read, cycles added and partitions written.

    Raises
    ------
    UsageError
        No sources, a refused or repeated name, an empty destination, a local
        destination (path or ``file://``) inside a source's folder or an
        archive source.
    InputError
        A source does not exist or is given twice (file identity), the
        destination cannot be opened (a URL naming no bucket included), holds
        a symbolic link under a ``source=`` folder, a ``date=`` folder naming
        no date, or a partition file that cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> export_events([], tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: export needs at least one source
    """
    parsed = parse_sources(sources)
    if not to.strip():
        raise UsageError("export destination (--to) is empty")
    fs, root = _filesystem(to)
    local = isinstance(fs, pafs.LocalFileSystem)
    if local:
        check_local_destination(Path(root or "/"), to, parsed)
    exported = []
    for source in parsed:
        folder = f"{root}/source={source.name}"
        if local:
            refuse_links(Path(folder))
        _check_dates(fs, folder)
        frame = _export_frame(load_events(source.path, cache=cache))
        _clean_temporaries(fs, folder)
        added, written = _export_days(fs, folder, frame)
        exported.append(ExportedSource(source=source.name, path=source.path,
                                       cycles_read=frame.height, cycles_added=added,
                                       partitions_written=written))
    # An export is a batch step: a caller may move or delete a source right after it, so the
    # cache segments its loads started in the background are finished before it returns.
    wait_for_writes()
    return ExportReport(destination=to, sources=exported,
                        cycles_added=sum(s.cycles_added for s in exported),
                        partitions_written=sum(s.partitions_written for s in exported))


def _export_days(fs: pafs.FileSystem, folder: str, frame: pl.DataFrame) -> tuple[int, int]:
    """Merge every day the frame touches into its partition; (cycles added, files written).

    A day whose rows hash to the fingerprint stored in its partition's footer
    holds nothing new and is skipped without reading the partition.
    """
    days = frame.unique(maintain_order=True).with_columns(
        pl.col("timestamp").dt.date().alias("_date"))
    added = written = 0
    for (day,), rows in days.sort("timestamp").group_by("_date", maintain_order=True):
        assert isinstance(day, date)
        partition = f"{folder}/date={day.isoformat()}"
        final = f"{partition}/{PART_FILE}"
        new = rows.drop("_date")
        if _stored_fingerprint(fs, final) == _fingerprint(new):
            continue
        old = _read_partition(fs, partition)
        merged = _merge(final, old, new)
        before = 0 if old is None else old.height
        if merged.height == before:
            continue
        _write_partition(fs, partition, merged)
        added += merged.height - before
        written += 1
    return added, written


def scan_export(to: str) -> pl.LazyFrame:
    """Read an exported dataset back as one lazy frame (``source`` and ``date`` included).

    Parameters
    ----------
    to : str
        The export destination (a directory, or an object-store URL).

    Returns
    -------
    polars.LazyFrame
        The columns of :data:`EXPORT_SCHEMA` (``timestamp`` as
        ``Datetime("ms", "UTC")``, ``health_state``/``health_reason`` strings,
        ``reason_codes`` a list of strings), then the counters (``Int32``), then
        ``source`` (string) and ``date`` (date) from the hive partition paths.

    Raises
    ------
    InputError
        The destination holds no exported partition.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     scan_export(tmp)
    Traceback (most recent call last):
    ...
    tau_ops.errors.InputError: no exported events under ...
    """
    if "://" not in to and not any(Path(to).glob(f"source=*/date=*/{PART_FILE}")):
        raise InputError(f"no exported events under {to}")
    return pl.scan_parquet(f"{to.rstrip('/')}/source=*/date=*/{PART_FILE}",
                           hive_partitioning=True, hive_schema=PARTITION_SCHEMA)
