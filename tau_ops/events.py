"""The one validity rule of a ``runtime-events.jsonl`` line, shared by every reader.

The status report, the diagnosis, the gateway and the analysis loaders all
decide "is this line a cycle report, and what does it say" here, so they
count the same cycles and read the same values (the analysis fast path is
checked against this rule, see :mod:`tau_ops.analysis._parse`).

A line is **valid** when, under the JSON policy of :mod:`tau_ops.jsonio`
(no duplicate keys, NaN, lone surrogates, byte-order mark, nesting deeper
than 64), it is a JSON object with

- ``timestamp_unix_ms``: a JSON integer in ``0 ..`` :data:`~tau_ops.jsonio.MAX_UNIX_MS`;
- ``health_state``: one of ``healthy``, ``degraded``, ``failing``;
- ``health_reason``: a string, when present (missing reads as None);
- ``reason_codes``: a list of the nine SPEC reason codes (strings);
- each counter of :data:`COUNTERS`, when present: a JSON integer in
  ``0 ..`` :data:`MAX_COUNTER` (a missing counter reads as 0: the seed
  writes no ``cycle_duration_ms``).

Anything else (``"7"``, ``2.5``, ``true`` or ``null`` for a number, a
microsecond timestamp, a negative counter) makes the line invalid: it is
skipped and counted, never coerced. Other fields are allowed and ignored.
Blank lines (JSON whitespace only) are not lines.

Examples
--------
>>> parse_event_line(b'{"timestamp_unix_ms": 5, "health_state": "healthy",'
...                  b' "health_reason": "ok", "reason_codes": ["healthy_cycle"]}')["failed_cases"]
0
>>> parse_event_line(b'{"timestamp_unix_ms": "5", "health_state": "healthy",'
...                  b' "health_reason": "ok", "reason_codes": []}') is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from tau_ops.jsonio import MAX_UNIX_MS, JSONPolicyError, is_json_int, parse_json
from tau_ops.models import HEALTH_STATES, REASON_CODES
from tau_ops.storage import read_jsonl_values

COUNTERS: Final[tuple[str, ...]] = (
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
"""Counter fields of an event line, in the order of the analysis frame."""

MAX_COUNTER: Final = 2**31 - 1
"""Largest counter value accepted (2,147,483,647: the analysis frame's Int32)."""

FIELDS: Final[tuple[str, ...]] = (
    "timestamp_unix_ms", "health_state", "health_reason", "reason_codes", *COUNTERS,
)
"""Every field the rule reads, in the order of :func:`event_from_value`'s result."""

JSON_WHITESPACE: Final = b" \t\r\n"
_STATES = frozenset(HEALTH_STATES)
_CODES = frozenset(REASON_CODES)


def _in_range(value: Any, top: int) -> bool:
    return is_json_int(value) and 0 <= value <= top


def event_from_value(value: Any) -> dict[str, Any] | None:
    """The normalized event of a parsed line, or None when the line is invalid.

    Parameters
    ----------
    value : Any
        One line as :func:`tau_ops.jsonio.parse_json` returned it.

    Returns
    -------
    dict or None
        ``{field: value}`` for every name in :data:`FIELDS` (missing counters
        as 0, in that order), plus any other fields of the line; None when the
        line breaks the rule in the module docstring.

    Examples
    --------
    >>> event_from_value({"timestamp_unix_ms": 2**60, "health_state": "healthy",
    ...                   "health_reason": "", "reason_codes": []}) is None
    True
    """
    if not isinstance(value, dict):
        return None
    if not _in_range(value.get("timestamp_unix_ms"), MAX_UNIX_MS):
        return None
    state = value.get("health_state")
    if not isinstance(state, str) or state not in _STATES:
        return None
    if "health_reason" in value and not isinstance(value["health_reason"], str):
        return None
    codes = value.get("reason_codes")
    if not isinstance(codes, list) or not all(isinstance(c, str) and c in _CODES for c in codes):
        return None
    out: dict[str, Any] = {name: value.get(name) for name in FIELDS[:4]}
    for name in COUNTERS:
        count = value.get(name, 0)
        if not _in_range(count, MAX_COUNTER):
            return None
        out[name] = count
    for name, item in value.items():
        out.setdefault(name, item)
    return out


def is_blank(raw: bytes) -> bool:
    """True for a line of JSON whitespace only (not a line for any reader)."""
    return not raw.strip(JSON_WHITESPACE)


def parse_event_line(raw: bytes | str) -> dict[str, Any] | None:
    """Parse one event line under the JSON policy and the rule; None when invalid.

    Parameters
    ----------
    raw : bytes or str
        The line, with or without its line end.

    Returns
    -------
    dict or None
        As :func:`event_from_value`.
    """
    try:
        value = parse_json(raw)
    except JSONPolicyError:
        return None
    return event_from_value(value)


def read_event_file(path: Path, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The valid events of one events file, oldest first, and its invalid line count.

    Parameters
    ----------
    path : Path
        ``runtime-events.jsonl`` or one of its rotated backups.
    limit : int, optional
        Read only the first ``limit`` bytes: the committed part of a file whose
        tail holds an uncommitted cycle.

    Returns
    -------
    tuple of (list of dict, int)
        Normalized events (:func:`event_from_value`) and the number of
        non-blank lines that broke the rule. A missing file gives ``([], 0)``.

    Raises
    ------
    OSError
        The file is not a regular file, exceeds ``LIMITS["jsonl_file"]``, or
        cannot be read.
    """
    events: list[dict[str, Any]] = []
    values, invalid = read_jsonl_values(path, limit)
    for value in values:
        event = event_from_value(value)
        if event is None:
            invalid += 1
        else:
            events.append(event)
    return events, invalid


def events_from_bytes(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The valid events of JSONL bytes, in order, and the count of invalid lines.

    Lines are split and judged exactly as :func:`read_event_file` does (blank
    lines skipped, each other line by :func:`parse_event_line`).

    Parameters
    ----------
    data : bytes
        Whole lines of an events file (a committed prefix or an appended slice).

    Returns
    -------
    tuple of (list of dict, int)
        As :func:`read_event_file`.

    Examples
    --------
    >>> events, invalid = events_from_bytes(
    ...     b'{"timestamp_unix_ms": 5, "health_state": "failing", "reason_codes": []}\\n\\nx\\n')
    >>> (len(events), events[0]["health_reason"], invalid)
    (1, None, 1)
    """
    events: list[dict[str, Any]] = []
    invalid = 0
    for raw in data.split(b"\n"):
        if is_blank(raw):
            continue
        event = parse_event_line(raw)
        if event is None:
            invalid += 1
        else:
            events.append(event)
    return events, invalid
