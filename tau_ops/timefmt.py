"""Timestamps and durations for people: ISO 8601 UTC, "11 months ago", "24 h"."""

from __future__ import annotations

import datetime as dt

from tau_ops.jsonio import MAX_UNIX_MS

_UNITS = (
    ("year", 365 * 24 * 3600 * 1000),
    ("month", 30 * 24 * 3600 * 1000),
    ("day", 24 * 3600 * 1000),
    ("hour", 3600 * 1000),
    ("minute", 60 * 1000),
    ("second", 1000),
)


def iso_utc(unix_ms: int) -> str:
    """``unix_ms`` as ISO 8601 UTC with a ``Z`` (milliseconds only when not zero).

    Examples
    --------
    >>> iso_utc(1_767_228_000_000), iso_utc(1_767_228_000_250)
    ('2026-01-01T00:40:00Z', '2026-01-01T00:40:00.250Z')
    >>> iso_utc(-1)
    'not a valid time (-1 ms)'
    """
    if not 0 <= unix_ms <= MAX_UNIX_MS:
        return f"not a valid time ({unix_ms} ms)"
    moment = dt.datetime.fromtimestamp(unix_ms // 1000, tz=dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{unix_ms % 1000:03d}Z" if unix_ms % 1000 else f"{text}Z"


def plural(count: int, unit: str) -> str:
    """``1 cycle``, ``2 cycles``, ``0 cycles``.

    Examples
    --------
    >>> plural(1, "cycle"), plural(3, "cycle")
    ('1 cycle', '3 cycles')
    """
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def duration_text(ms: int) -> str:
    """A duration in its largest whole unit (``11 months``, ``24 hours``, ``250 ms``).

    Examples
    --------
    >>> duration_text(86_400_000), duration_text(90_000), duration_text(5)
    ('1 day', '1 minute', '5 ms')
    """
    ms = abs(ms)
    for unit, size in _UNITS:
        if ms >= size:
            return plural(ms // size, unit)
    return f"{ms} ms"


def age_text(unix_ms: int, now_ms: int) -> str:
    """How long ago (or ahead) ``unix_ms`` is: ``11 months ago``, ``just now``, ``in 1 year``.

    Examples
    --------
    >>> age_text(0, 3_600_000), age_text(500, 1_000), age_text(2 * 3_600_000, 0)
    ('1 hour ago', 'just now', 'in 2 hours')
    """
    delta = now_ms - unix_ms
    if abs(delta) < 1000:
        return "just now"
    return f"{duration_text(delta)} ago" if delta > 0 else f"in {duration_text(delta)}"


def describe_ms(unix_ms: int) -> str:
    """Raw milliseconds with their ISO form: ``1767228000000 (2026-01-01T00:40:00Z)``."""
    return f"{unix_ms} ({iso_utc(unix_ms)})"


def when_text(unix_ms: int, now_ms: int) -> str:
    """ISO time and age: ``2026-01-01T00:40:00Z, 11 months ago``."""
    return f"{iso_utc(unix_ms)}, {age_text(unix_ms, now_ms)}"
