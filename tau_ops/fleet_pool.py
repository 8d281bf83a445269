"""Read many fleet members at once on a bounded set of daemon threads, each within a deadline.

The pool is what lets a fleet verdict return on time whatever its members do:
a reader stuck past its member's deadline (a FIFO, a server that drips bytes)
is left behind on its daemon thread and replaced by a fresh one, at most
:data:`MAX_REPLACEMENT_READERS` times; members no reader could start then are
given up as late too. The waiting thread sleeps until a reader finishes or the
next deadline falls, so its cost grows with the readers in flight, not with
the size of the fleet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

MAX_REPLACEMENT_READERS = 64
"""Readers started to replace ones stuck past a deadline, per call."""

Item = TypeVar("Item")
Row = TypeVar("Row")


def read_all(items: Sequence[Item], read_one: Callable[[Item], Row], *, timeout_s: float,
             max_workers: int, late: Callable[[Item, str, int], Row]) -> list[Row]:
    """Read every item concurrently; one row per item, in the order given.

    Parameters
    ----------
    items : sequence
        What to read (fleet member specs).
    read_one : callable
        Reads one item into its row; must not raise for the item's own fault.
    timeout_s : float
        Deadline per item in seconds, counted from when a reader starts it.
    max_workers : int
        Readers at once (threads), at least 1.
    late : callable
        ``late(item, message, elapsed_ms)``: the row of an item past its
        deadline, or never started because too many readers hung before it.

    Returns
    -------
    list
        One row per item, in the order of ``items``.

    Examples
    --------
    >>> read_all([1, 2, 3], lambda n: n * 10, timeout_s=1.0, max_workers=2,
    ...          late=lambda n, message, ms: -n)
    [10, 20, 30]
    """
    count = len(items)
    results: list[Row | None] = [None] * count
    in_flight: dict[int, float] = {}  # index -> when its reader started it (monotonic s)
    changed = threading.Condition()
    cursor = 0

    def take() -> int | None:
        nonlocal cursor
        with changed:
            if cursor >= count:
                return None
            index = cursor
            cursor += 1
            in_flight[index] = time.monotonic()
            return index

    def work() -> None:
        while (index := take()) is not None:
            row = read_one(items[index])
            with changed:
                if results[index] is None:
                    results[index] = row
                in_flight.pop(index, None)
                changed.notify()

    def spawn() -> None:
        threading.Thread(target=work, daemon=True, name="tau-fleet-reader").start()

    for _ in range(min(max_workers, count)):
        spawn()
    replacements = 0
    with changed:
        while True:
            now = time.monotonic()
            overdue = [i for i, began in in_flight.items() if now - began > timeout_s]
            for index in overdue:
                results[index] = late(items[index], f"no answer within {timeout_s:g} s",
                                      int((now - in_flight.pop(index)) * 1000))
            unstarted = cursor < count
            if unstarted and replacements + len(overdue) > MAX_REPLACEMENT_READERS:
                for index in range(cursor, count):
                    results[index] = late(items[index],
                                          "not read: too many members hung before it", 0)
                cursor = count
                unstarted = False
            for _ in range(len(overdue) if unstarted else 0):
                replacements += 1
                spawn()
            if not in_flight and not unstarted:
                break
            deadline = min(in_flight.values(), default=now) + timeout_s
            changed.wait(timeout=max(deadline - now, 0.0) + 0.001)
    return [row for row in results if row is not None]
