"""The fast ingest path: duckdb reads typed values, byte accounting proves them exact.

duckdb's ``read_json`` with typed columns is the quickest reader measured here,
but it coerces (``"7"``, ``2.5``, ``true`` and ``1e3`` all read as integers).
:func:`typed_frame` accepts its result only when the file's bytes prove that
no coercion happened, by accounting for every byte of every line:

A line that duckdb read as a valid event (every value in range, state and
codes from the contract, ``health_reason`` a JSON string) is at least as long
as the compact JSON of what was read: ``{``, ``}``, for each key read
``"key":`` plus the value's shortest text, and a comma between members. Every
other way to write a value that reads the same is longer (quotes around a
number, ``.0``, ``true``, ``-0``, a hex string, whitespace, another member, a
duplicated key, a trailing comma), except exponent forms (``1e9``), which hold
an ``e`` or ``E`` outside the strings read. So when

- the file holds no backslash (strings are verbatim) and is valid UTF-8
  without a byte-order mark,
- every line read is a valid event (a line duckdb cannot read, and a blank
  line, leaves its bytes unaccounted for),
- the file's size equals the sum of the compact lengths plus one newline a
  line, and its count of ``e`` and ``E`` equals the sum over keys and strings,

then every line is exactly the compact JSON of its values, which the one rule
of :mod:`tau_ops.events` reads to the same values. Otherwise the caller takes a
slower exact path. Keys are matched case-sensitively by duckdb, and raw control
characters inside a string make duckdb refuse the line (tests guard both).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tau_ops.events import COUNTERS, MAX_COUNTER
from tau_ops.jsonio import MAX_UNIX_MS
from tau_ops.models import HEALTH_STATES, REASON_CODES

if TYPE_CHECKING:
    import duckdb

CHUNK_BYTES = 1 << 24
READ_ROWS = 1 << 17
KEEP_BYTES = 1 << 27
"""A streamed proof keeps the columns a scan wants up to this size (128 MiB), so a query
over a few columns reads the file once; past it, they are read again after the proof."""
"""Rows per Arrow batch duckdb hands over: 0.85 s against 1.06 s for one ``.pl()`` of a
500,000-line file (1M-row batches: 1.09 s), and memory bounded by the batch."""
_BOM = b"\xef\xbb\xbf"
_INTS = ("timestamp_unix_ms", *COUNTERS)
_KEYS = ("timestamp_unix_ms", "health_state", "health_reason", "reason_codes", *COUNTERS)
# INTEGER holds 0..MAX_COUNTER of the non-negative counters; a larger one is not read,
# which leaves its bytes unaccounted for.
assert MAX_COUNTER == 2**31 - 1
_TYPES = {"timestamp_unix_ms": "BIGINT", "health_state": "VARCHAR", "health_reason": "JSON",
          "reason_codes": "VARCHAR[]", **{name: "INTEGER" for name in COUNTERS}}


def _letters(text: str) -> tuple[int, int]:
    return text.count("e"), text.count("E")


def scan_bytes(path: Path, size: int) -> tuple[int, int] | None:
    """The counts of ``e`` and of ``E`` in the first ``size`` bytes; None when not plain.

    Plain: no backslash, valid UTF-8, no byte-order mark.
    """
    import codecs

    lower = upper = 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    left = size
    with open(path, "rb") as handle:
        while left > 0:
            data = handle.read(min(CHUNK_BYTES, left))
            if not data:
                return None  # the file shrank: not the bytes the caller measured
            left -= len(data)
            if b"\\" in data:
                return None
            if not data.isascii():
                if _BOM in tail + data[:2] or _BOM in data:
                    return None
                try:
                    decoder.decode(data)
                except UnicodeDecodeError:
                    return None
            tail = data[-2:]
            lower += data.count(b"e")
            if b"E" in data:
                upper += data.count(b"E")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return lower, upper


def _sql(path: Path) -> str:
    columns = ", ".join(f"{name}: '{kind}'" for name, kind in _TYPES.items())
    literal = "'" + str(path).replace("'", "''") + "'"
    return (f"SELECT * FROM read_json([{literal}], format='newline_delimited', "
            f"ignore_errors=true, columns={{{columns}}})")


def _digit_sum(frame: pl.DataFrame, name: str) -> int:
    """Total decimal digits of the column's non-null values (all non-negative)."""
    column = frame[name]
    present = column.len() - column.null_count()
    if not present:
        return 0
    low, high = int(column.min()), int(column.max())  # type: ignore[arg-type]
    total = present  # every value has a first digit
    threshold = 10
    while threshold <= high:
        if threshold <= low:
            total += present
        else:
            total += int((column >= threshold).sum())
        threshold *= 10
    return total


def _from_raw(name: str, schema: dict[str, Any]) -> pl.Expr:
    """Column ``name`` of the events frame from duckdb's typed columns (the one conversion).

    A state or code outside the contract becomes null (the validity check
    catches it); ``health_reason`` is read as its JSON text, quotes included.
    """
    if name == "timestamp":
        return (pl.col("timestamp_unix_ms").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
                .alias("timestamp"))
    if name == "health_reason":
        return pl.col(name).str.slice(1, pl.col(name).str.len_chars() - 2)
    if name in COUNTERS:
        return pl.col(name).fill_null(0).cast(schema[name])
    return pl.col(name).cast(schema[name], strict=False)


def _raw_name(name: str) -> str:
    return "timestamp_unix_ms" if name == "timestamp" else name


def _converted(raw: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """duckdb's values as the events frame's types, plus ``valid`` per row."""
    reason = pl.col("health_reason")
    codes = _from_raw("reason_codes", schema)
    state = _from_raw("health_state", schema)
    valid = pl.all_horizontal(
        pl.col("timestamp_unix_ms").is_between(0, MAX_UNIX_MS).fill_null(False),
        state.is_not_null(),
        # a string, as written: an escape duckdb added would make its text longer than the line's
        reason.is_null() | (reason.str.starts_with('"')
                            & ~reason.str.contains("\\", literal=True)),
        codes.is_not_null(),
        *[pl.col(name).is_null() | (pl.col(name) >= 0) for name in COUNTERS],
    )
    return raw.select(  # duckdb's text columns are not kept (memory)
        *_INTS, reason, _from_raw("timestamp", schema), state, codes, valid.alias("valid"),
    )


def _accounted(typed: pl.DataFrame, newlines: int) -> tuple[int, int, int]:
    """(bytes, ``e`` count, ``E`` count) the compact JSON of every (valid) row accounts for.

    ``typed`` is :func:`_converted`'s frame (state and codes cast; on valid
    rows the casts kept every value).
    """
    rows = typed.height
    present = {name: rows - typed[name].null_count() for name in _KEYS}
    members = sum(present.values())
    size = 2 * rows + (members - rows) + newlines  # braces, commas between members, newlines
    lower = capital = 0
    for name, count in present.items():
        size += count * (len(name) + 3)  # "name":
        lower += count * _letters(name)[0]
        capital += count * _letters(name)[1]
    size += sum(_digit_sum(typed, name) for name in _INTS)
    for words, column in ((HEALTH_STATES, typed["health_state"]),
                          (REASON_CODES, typed["reason_codes"].explode().drop_nulls())):
        for index, count in column.to_physical().value_counts().iter_rows():
            word = words[index]
            size += count * (len(word.encode()) + 2)
            lower += count * _letters(word)[0]
            capital += count * _letters(word)[1]
    lengths = typed["reason_codes"].list.len()
    size += 2 * rows + int(lengths.sum()) - int((lengths > 0).sum())  # brackets, commas
    reason = typed["health_reason"]
    size += int(reason.str.len_bytes().sum())
    lower += int(reason.str.count_matches("e", literal=True).sum())
    capital += int(reason.str.count_matches("E", literal=True).sum())
    return size, lower, capital


def _checked(typed: pl.DataFrame) -> bool:
    """Every row valid, and every code from the contract (none became null in the cast)."""
    codes = typed["reason_codes"]
    return bool(typed["valid"].all()) and (
        codes.explode().drop_nulls().len() == int(codes.list.len().sum()))


def _terminated(path: Path, size: int) -> bool:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def typed_frame(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str], schema: dict[str, Any]
) -> pl.DataFrame | None:
    """The events of ``path`` read by duckdb with typed columns, or None when not proven exact.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection to run the query on.
    path : Path
        An events file that is not being appended to while it is read.
    columns : sequence of str
        Columns of the result (names of ``schema``).
    schema : dict
        The events frame's column types.

    Returns
    -------
    polars.DataFrame or None
        Every line's values, typed, in file order (the file then holds no
        invalid line); None when the byte accounting in the module docstring
        does not hold (the caller parses the file another way).
    """
    exact, kept = proven(con, path, schema, keep=columns, keep_bytes=None)
    if not exact or not kept:
        return None
    return pl.concat(kept, how="vertical", rechunk=False)


def record_batches(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[pl.DataFrame]:
    """The query's result as polars frames of at most :data:`READ_ROWS` rows."""
    relation = con.sql(sql)
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    for record_batch in to_reader(READ_ROWS):
        frame = pl.from_arrow(record_batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _output(typed: pl.DataFrame, columns: Sequence[str], schema: dict[str, Any]) -> pl.DataFrame:
    """``columns`` of the events frame from :func:`_converted`'s frame."""
    return typed.select(
        pl.col(name) if name in ("timestamp", "health_state", "reason_codes")
        else _from_raw(name, schema) for name in columns)


def proven(
    con: duckdb.DuckDBPyConnection, path: Path, schema: dict[str, Any],
    keep: Sequence[str] | None = None, keep_bytes: int | None = KEEP_BYTES,
) -> tuple[bool, list[pl.DataFrame] | None]:
    """Whether the byte accounting in the module docstring proves duckdb's typed read exact.

    Streamed: every column is read in batches of :data:`READ_ROWS` and only
    the sums (and the ``keep`` columns) are kept. ``path`` must not change
    while it is read.

    Parameters
    ----------
    keep : sequence of str, optional
        Columns of the events frame to keep from the pass (None: none).
    keep_bytes : int or None
        Stop keeping them past this many bytes (default :data:`KEEP_BYTES`;
        None: no limit, the whole file's columns in memory).

    Returns
    -------
    tuple of (bool, list of polars.DataFrame or None)
        Exact or not; and the ``keep`` columns of every line, in batches, when
        the proof holds and they fit ``keep_bytes`` (otherwise None: read them
        with :func:`typed_batches`).
    """
    size = path.stat().st_size
    if not size:
        return False, None
    rows = total = lower = capital = kept_bytes = 0
    kept: list[pl.DataFrame] | None = [] if keep is not None else None
    with ThreadPoolExecutor(1) as pool:  # count bytes while duckdb parses
        scanned = pool.submit(scan_bytes, path, size)
        try:
            for raw in record_batches(con, _sql(path)):
                typed = _converted(raw, schema)
                if not _checked(typed):
                    return False, None
                part = _accounted(typed, typed.height)
                rows, total = rows + typed.height, total + part[0]
                lower, capital = lower + part[1], capital + part[2]
                if kept is not None and keep is not None:
                    kept.append(_output(typed, keep, schema))
                    kept_bytes += int(kept[-1].estimated_size())
                    if keep_bytes is not None and kept_bytes > keep_bytes:
                        kept = None  # too big to hold: the caller reads the columns again
        finally:
            letters = scanned.result()
    if letters is None or rows == 0 or size != path.stat().st_size:
        return False, None
    if not _terminated(path, size):
        total -= 1  # no newline after the last line
    exact = (total, lower, capital) == (size, *letters)
    return exact, kept if exact else None


def typed_batches(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str], schema: dict[str, Any]
) -> Iterator[pl.DataFrame]:
    """``columns`` of a file :func:`proven` exact, read by duckdb in batches (only those keys)."""
    wanted = list(dict.fromkeys(_raw_name(name) for name in columns))
    sql = _sql(path).replace("SELECT *", "SELECT " + ", ".join(wanted), 1)
    for raw in record_batches(con, sql):
        yield raw.select(_from_raw(name, schema) for name in columns)
