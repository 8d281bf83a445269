"""Event-line parsing: JSONL bytes to typed polars frames, agreeing with :mod:`tau_ops.events`.

Three paths, each giving exactly what the one validity rule
(:func:`tau_ops.events.parse_event_line`) gives, line by line:

0. A small file (under :data:`EXACT_BELOW` bytes: a few thousand lines) is
   parsed by the rule itself, line by line; duckdb and pyarrow are not even
   imported (``tau-ops report`` on a small state dir starts faster).
1. A larger file is read by duckdb with typed columns, and the result is kept
   only when the file's bytes account for every value read
   (:mod:`tau_ops.analysis._fast`): the compact JSON any writer of this log
   produces (the seed's and tau-ops' runners) passes. A lazy scan
   (:func:`iter_batches`) runs the same proof streamed, keeping only its sums,
   then reads just the keys the query needs, so its memory stays bounded.
2. Otherwise every field is read as duckdb ``JSON`` (the value as written),
   so types are checked, never coerced: ``"7"``, ``2.5``, ``true`` or
   ``null`` for a number make the line invalid, as do out-of-range values.
   duckdb's JSON reader is more lenient than the policy (it keeps the first
   of duplicated keys, accepts trailing commas, NaN, deep nesting in fields
   it does not read). A line only differs when it holds a byte the parsed
   values do not account for, so the query also returns, per line, how many
   ``"`` and ``,`` the values explain, and the file's own counts must match
   (each line explains at most what it holds, so equal sums mean every line
   is accounted for). A file with a backslash, a byte-order mark or invalid
   UTF-8, or whose counts differ, is parsed line by line by the policy
   itself. Rotated files are at most 10 MiB, so that costs little.
"""

from __future__ import annotations

import codecs
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tau_ops.errors import InputError
from tau_ops.events import COUNTERS, MAX_COUNTER, events_from_bytes, is_blank, read_event_file
from tau_ops.jsonio import MAX_UNIX_MS
from tau_ops.models import HEALTH_STATES, REASON_CODES

if TYPE_CHECKING:
    import duckdb

HEALTH_STATE = pl.Enum(list(HEALTH_STATES))
REASON_CODE = pl.Enum(list(REASON_CODES))

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("ms", "UTC"),
    "health_state": HEALTH_STATE,
    "health_reason": pl.String(),
    "reason_codes": pl.List(REASON_CODE),
    **{name: pl.Int32() for name in COUNTERS},
}
"""Columns and types of an events frame, in order (plus ``source`` for a fleet)."""

EXACT_BELOW = 1 << 20
"""Files smaller than this (bytes) are parsed by the rule itself, without duckdb."""
CHUNK_BYTES = 1 << 24
_BOM = b"\xef\xbb\xbf"
_RAW = ("timestamp_unix_ms", "health_state", "health_reason", "reason_codes", *COUNTERS)


def _count(text: str, char: str) -> str:
    return f"coalesce(length({text}) - length(replace({text}, '{char}', '')), 0)"


def _select_sql(paths: Sequence[Path]) -> str:
    """Typed values, the rule's verdict, and the ``"`` and ``,`` each line accounts for.

    Every field is read as its JSON text (re-serialized by duckdb: same
    quotes, commas only between items). A number is an integer when casting
    it to BIGINT and back gives the same text (``2.5``, ``1000.0``, ``"7"``
    and ``true`` do not). A line accounts for two quotes per key read plus the
    quotes and commas in the text of its values, and for one comma between
    keys; reason codes are checked against the enum in :func:`finish`.
    """
    types = ", ".join(f"{name}: 'JSON'" for name in _RAW)
    literal = ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths)
    ints = ("timestamp_unix_ms", *COUNTERS)
    casts = ", ".join(f"TRY_CAST({n}::VARCHAR AS BIGINT) AS {n}__v" for n in ints)
    int_ok = " AND ".join(
        f"({n} IS NULL OR ({n}__v::VARCHAR = {n}::VARCHAR AND {n}__v BETWEEN 0 AND "
        f"{MAX_COUNTER}))" for n in COUNTERS
    )
    keys = " + ".join(f"({n} IS NOT NULL)::INTEGER" for n in _RAW)
    # Numbers hold no quotes or commas; a non-number there is invalid anyway, and
    # leaving its characters unaccounted only sends the file to the exact path.
    texts = ("health_state", "health_reason", "reason_codes")
    quotes = " + ".join(
        [f"2 * coalesce(starts_with({n}::VARCHAR, '\"'), false)::INTEGER" for n in texts[:2]]
        + [_count("reason_codes::VARCHAR", '"')]
    )
    commas = " + ".join(_count(f"{n}::VARCHAR", ",") for n in texts)
    states = ", ".join(f"'\"{state}\"'" for state in HEALTH_STATES)
    counters = ", ".join(f"coalesce(TRY_CAST({n}__v AS INTEGER), 0) AS {n}" for n in COUNTERS)
    return f"""
    WITH raw AS (
      SELECT *, {casts}, {keys} AS n_keys
      FROM read_json([{literal}], format='newline_delimited', ignore_errors=true,
                     columns={{{types}}})
    )
    SELECT
      coalesce(timestamp_unix_ms__v::VARCHAR = timestamp_unix_ms::VARCHAR
               AND timestamp_unix_ms__v BETWEEN 0 AND {MAX_UNIX_MS}
               AND health_state::VARCHAR IN ({states})
               AND coalesce(starts_with(health_reason::VARCHAR, '"'), true)
               AND starts_with(reason_codes::VARCHAR, '[')
               AND {int_ok}, false) AS valid,
      2 * n_keys + {quotes} AS quotes,
      greatest(n_keys - 1, 0) + {commas} AS commas,
      timestamp_unix_ms__v AS timestamp_unix_ms,
      health_state ->> '$' AS health_state,
      health_reason ->> '$' AS health_reason,
      TRY_CAST(reason_codes AS VARCHAR[]) AS reason_codes,
      {counters}
    FROM raw"""


@dataclass
class _Counts:
    """What the bytes of a file hold that the parsed values must account for."""

    quotes: int = 0
    commas: int = 0
    plain: bool = True  # no backslash, no byte-order mark, valid UTF-8


def _byte_counts(path: Path) -> _Counts:
    """Count ``"`` and ``,`` in chunks; stop early at a backslash, a BOM or bad UTF-8."""
    counts = _Counts()
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if b"\\" in chunk or _BOM in tail + chunk[:2] or _BOM in chunk:
                counts.plain = False
                return counts
            tail = chunk[-2:]
            if not chunk.isascii():
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    counts.plain = False
                    return counts
            counts.quotes += chunk.count(b'"')
            counts.commas += chunk.count(b",")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        counts.plain = False
    return counts


def finish(batch: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Drop and count invalid rows of a checked batch, then type it as ``columns``.

    ``valid`` comes from the query; a reason code outside the enum (or not a
    string) makes the row invalid here.
    """
    codes = pl.col("reason_codes").cast(pl.List(REASON_CODE), strict=False)
    batch = batch.with_columns(codes)
    valid = batch.select(
        pl.col("valid") & ~codes.list.eval(pl.element().is_null()).list.any().fill_null(True)
    ).to_series()
    invalid = int(valid.len() - valid.sum())
    if invalid:
        batch = batch.filter(valid)
    exprs: list[pl.Expr] = []
    for name in columns:
        if name == "timestamp":
            exprs.append(pl.col("timestamp_unix_ms").cast(pl.Datetime("ms"))
                         .dt.replace_time_zone("UTC").alias("timestamp"))
        else:
            exprs.append(pl.col(name).cast(EVENT_SCHEMA[name]))
    return batch.select(exprs), invalid


def _events_frame(
    events: list[dict[str, object]], invalid: int, columns: Sequence[str]
) -> tuple[pl.DataFrame, int]:
    rows = {name: [e[name] for e in events] for name in _RAW}
    raw = pl.DataFrame(rows, schema={
        "timestamp_unix_ms": pl.Int64, "health_state": pl.String,
        "health_reason": pl.String, "reason_codes": pl.List(pl.String),
        **{name: pl.Int64 for name in COUNTERS},
    }).with_columns(valid=pl.lit(True))
    frame, _ = finish(raw, columns)
    return frame, invalid


def _policy_frame(path: Path, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Parse a file line by line with the policy itself (the exact, slower path)."""
    events, invalid = read_event_file(path)
    return _events_frame(events, invalid, columns)


_local = threading.local()


def _connect() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory duckdb connection (opening one costs more than a small query)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = _local.con = duckdb.connect()
    return con


def _batches(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str]
) -> Iterator[tuple[pl.DataFrame, int]]:
    import duckdb

    from tau_ops.analysis import _fast

    try:  # path 1, streamed: proven first (keeping the wanted columns when they are small)
        exact, kept = _fast.proven(con, path, EVENT_SCHEMA, keep=columns)
    except duckdb.InvalidInputException:
        exact, kept = False, None
    if exact:
        for frame in kept if kept is not None else _fast.typed_batches(
                con, path, columns, EVENT_SCHEMA):
            yield frame, 0
        return
    sql = _select_sql([path])
    counts = _byte_counts(path)
    if counts.plain:
        try:
            quotes, commas = con.sql(
                f"SELECT coalesce(sum(quotes), 0), coalesce(sum(commas), 0) FROM ({sql})"
            ).fetchall()[0]
        except duckdb.InvalidInputException:
            quotes = commas = -1
        if (quotes, commas) == (counts.quotes, counts.commas):
            for raw in _fast.record_batches(con, sql):
                yield finish(raw, columns)
            return
    yield _policy_frame(path, columns)


def _parse_checked(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str]
) -> tuple[pl.DataFrame, int]:
    """One file in one pass: the checks and the values from one query (path 2)."""
    import duckdb

    counts = _byte_counts(path)
    if counts.plain:
        try:
            raw = con.sql(_select_sql([path])).pl()
        except duckdb.InvalidInputException:
            raw = None
        if raw is not None and (int(raw["quotes"].sum()), int(raw["commas"].sum())) == (
            counts.quotes, counts.commas
        ):
            return finish(raw, columns)
    return _policy_frame(path, columns)


def _parse_large(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str]
) -> tuple[pl.DataFrame, int]:
    """Path 1 (typed, proven by byte accounting), else path 2."""
    import duckdb

    from tau_ops.analysis import _fast

    try:
        frame = _fast.typed_frame(con, path, columns, EVENT_SCHEMA)
    except duckdb.InvalidInputException:
        frame = None
    if frame is not None:
        return frame, 0
    return _parse_checked(con, path, columns)


def iter_batches(
    paths: Path | Sequence[Path], *, columns: Sequence[str] = tuple(EVENT_SCHEMA),
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Parse whole JSONL files, in order, in batches: (typed frame, invalid lines) per batch.

    Each file is checked first (a streamed pass that keeps only sums, or one
    aggregate query), then streamed, so memory stays bounded by the batch
    size (:data:`tau_ops.analysis._fast.READ_ROWS` rows) for any file size.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        return
    if all(_size(path) < EXACT_BELOW for path in files):
        for path in files:
            yield _exact_file(path, columns)
        return
    import duckdb

    con = duckdb.connect()  # its own: the caller may interleave other queries between batches
    current = files[0]
    try:
        for current in files:
            yield from _batches(con, current, columns)
    except duckdb.IOException as exc:
        raise InputError(f"cannot read events file {current}: {exc}", path=current) from exc
    finally:
        con.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return EXACT_BELOW  # let the reader report it


def _exact_file(path: Path, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    try:
        return _policy_frame(path, columns)
    except OSError as exc:
        raise InputError(f"cannot read events file {path}: {exc.strerror or exc}",
                         path=path) from exc


def parse_file(
    path: Path, *, columns: Sequence[str] = tuple(EVENT_SCHEMA), exact_below: int | None = None
) -> tuple[pl.DataFrame, int]:
    """Parse one whole JSONL file: (typed frame, invalid line count).

    Parameters
    ----------
    path : Path
        An events file.
    columns : sequence of str
        Columns of the result (names of :data:`EVENT_SCHEMA`).
    exact_below : int, optional
        Files smaller than this many bytes are parsed by the rule itself,
        without duckdb (default :data:`EXACT_BELOW`; 0 always uses duckdb).

    Returns
    -------
    tuple of (polars.DataFrame, int)
        The valid lines, typed, in file order; the count of invalid lines
        (exactly as :func:`tau_ops.events.read_event_file` counts them).

    Raises
    ------
    InputError
        The file cannot be read.
    """
    if _size(path) < (EXACT_BELOW if exact_below is None else exact_below):
        return _exact_file(path, columns)
    import duckdb

    try:
        return _parse_large(_connect(), path, columns)
    except duckdb.IOException as exc:
        raise InputError(f"cannot read events file {path}: {exc}", path=path) from exc


def parse_bytes(data: bytes, *, scratch_dir: Path | None = None) -> tuple[pl.DataFrame, int]:
    """Parse JSONL bytes (a slice of a log): by the rule when small, else via a scratch file."""
    if is_blank(data):
        return empty_frame(tuple(EVENT_SCHEMA)), 0
    if len(data) < EXACT_BELOW:
        events, invalid = events_from_bytes(data)
        return _events_frame(events, invalid, tuple(EVENT_SCHEMA))
    folder = scratch_dir if scratch_dir is not None else Path(tempfile.gettempdir())
    fd, name = tempfile.mkstemp(prefix=".events-slice.", suffix=".jsonl", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return parse_file(Path(name))
    finally:
        os.unlink(name)


def to_stored(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as cached in Parquet: the timestamp as plain epoch milliseconds."""
    return frame.with_columns(pl.col("timestamp").dt.epoch("ms"))


def from_stored(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Undo :func:`to_stored`."""
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    ).cast(EVENT_SCHEMA)  # type: ignore[arg-type]


def empty_frame(columns: Sequence[str] = tuple(EVENT_SCHEMA)) -> pl.DataFrame:
    """A frame with no rows and the events schema (for empty or missing logs)."""
    return pl.DataFrame(schema={name: EVENT_SCHEMA[name] for name in columns})
