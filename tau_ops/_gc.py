"""Pause the cyclic garbage collector during bulk allocation phases.

Parsing a 100k-case fixture or committing a 100k-case cycle allocates millions
of small acyclic objects; the collector's generation scans then cost more than
the work itself (measured: parse 2.2 s -> 0.8 s, cycle 5.1 s -> 3.1 s). The
previous collector state is restored on exit, so callers see no change.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block; re-enable only if it was enabled."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
