"""Event-line parsing: JSONL bytes to typed polars frames through duckdb's JSON reader.

duckdb's ``read_json`` is the ingest path because it measured fastest here
(see docs/performance.md): it parses on every core and hands Arrow to polars.
With ``ignore_errors`` it turns a line it cannot parse into an all-NULL row,
so validity is decided after the parse (in polars, where it is cheapest) and
invalid rows are counted and dropped. A line is valid when it is a JSON object with an integer
``timestamp_unix_ms``, a known ``health_state`` and a list of known
``reason_codes``; a missing or non-integer counter reads as 0.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import polars as pl

from tau_ops.errors import InputError
from tau_ops.models import HEALTH_STATES, REASON_CODES

COUNTERS: tuple[str, ...] = (
    "discovered_cases",
    "queued_cases",
    "applied_cases",
    "duplicate_skips",
    "malformed_cases",
    "retryable_failures",
    "retry_attempts",
    "failed_cases",
    "upserted_rollouts",
    "wasm_rollouts",
    "cloud_rollouts",
    "backlog_cases",
    "failure_streak",
    "cycle_duration_ms",
)
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

_RAW_TYPES = {
    "timestamp_unix_ms": "BIGINT",
    "health_state": "VARCHAR",
    "health_reason": "VARCHAR",
    "reason_codes": "VARCHAR[]",
    **{name: "INTEGER" for name in COUNTERS},
}
_VALIDITY_INPUTS = ("timestamp_unix_ms", "health_state", "reason_codes")
BATCH_ROWS = 1 << 20


def _raw_columns(columns: Sequence[str]) -> list[str]:
    """The JSON fields needed for ``columns`` of the frame, validity inputs first."""
    wanted = dict.fromkeys(_VALIDITY_INPUTS)
    for name in columns:
        wanted["timestamp_unix_ms" if name == "timestamp" else name] = None
    return list(wanted)


def _select_sql(paths: Sequence[Path], raw: list[str]) -> str:
    types = ", ".join(f"{name}: '{_RAW_TYPES[name]}'" for name in raw)
    fields = [
        f"coalesce({name}, 0)::INTEGER AS {name}" if name in COUNTERS else name for name in raw
    ]
    literal = ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths)
    return (
        f"SELECT {', '.join(fields)} FROM read_json([{literal}], "
        f"format='newline_delimited', ignore_errors=true, columns={{{types}}})"
    )


def finish(batch: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Drop and count invalid rows of a raw batch, then type it as ``columns``."""
    batch = batch.with_columns(
        pl.col("health_state").cast(HEALTH_STATE, strict=False),
        pl.col("reason_codes").cast(pl.List(REASON_CODE), strict=False),
    )
    codes = pl.col("reason_codes")
    valid = batch.select(
        pl.col("timestamp_unix_ms").is_not_null()
        & pl.col("health_state").is_not_null()
        & codes.is_not_null()
        & ~codes.list.eval(pl.element().is_null()).list.any()
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


def iter_batches(
    paths: Path | Sequence[Path], *, columns: Sequence[str] = tuple(EVENT_SCHEMA),
    batch_rows: int = BATCH_ROWS,
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Parse whole JSONL files, in order, in batches: (typed frame, invalid lines) per batch."""
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        return
    con = duckdb.connect()
    try:
        relation = con.sql(_select_sql(files, _raw_columns(columns)))
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
        reader = to_reader(batch_rows)
        for record_batch in reader:
            raw = pl.from_arrow(record_batch)
            assert isinstance(raw, pl.DataFrame)
            yield finish(raw, columns)
    except duckdb.IOException as exc:
        raise InputError(f"cannot read events file {files[-1]}: {exc}", path=files[-1]) from exc
    finally:
        con.close()


def parse_file(
    path: Path, *, columns: Sequence[str] = tuple(EVENT_SCHEMA)
) -> tuple[pl.DataFrame, int]:
    """Parse one whole JSONL file: (typed frame, invalid line count)."""
    frames: list[pl.DataFrame] = []
    invalid = 0
    for frame, bad in iter_batches(path, columns=columns):
        frames.append(frame)
        invalid += bad
    if not frames:
        return empty_frame(columns), invalid
    return (frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)), invalid


def parse_bytes(data: bytes, *, scratch_dir: Path | None = None) -> tuple[pl.DataFrame, int]:
    """Parse JSONL bytes (a slice of a log) through a scratch file duckdb can read."""
    if not data.strip():
        return empty_frame(tuple(EVENT_SCHEMA)), 0
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
