"""Injected effects: the wall clock and the sleeper, replaceable in tests and demos."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
Sleeper = Callable[[float], None]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def real_sleep(seconds: float) -> None:
    """Sleep for real; the default sleeper of the runner's retry backoff."""
    time.sleep(seconds)


class FakeClock:
    """A manual clock for tests and deterministic demos: sleeping advances it.

    Calling the clock returns the current time; it is the ``clock`` every
    runner and status function accepts in place of :func:`wall_clock_ms`.

    Parameters
    ----------
    start_ms : int, default 1_700_000_000_000
        The starting time, Unix epoch milliseconds (ms).

    Examples
    --------
    >>> clock = FakeClock(start_ms=1_000)
    >>> clock.sleep(1.5)
    >>> clock.advance(500)
    >>> clock(), clock.sleeps
    (3000, [1.5])
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_ms += round(seconds * 1000)

    def advance(self, ms: int) -> None:
        self.now_ms += ms
