"""Shared pieces of the command line: flags several commands share, their ranges, output helpers.

The parser itself (environment variables, boolean forms, UTF-8) is
:mod:`tau_ops.cli._parser`; its names are re-exported here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol, TextIO, cast

from pydantic import BaseModel

from tau_ops.cli._parser import (
    BoolFlag,
    ErrorParser,
    ParserExit,
    env_name,
    int_range,
    parse_bool,
)
from tau_ops.errors import UsageError
from tau_ops.health import DEFAULT_STALE_AFTER_MS

__all__ = [
    "BoolFlag", "ErrorParser", "Feature", "LowerLevelFormatter", "ParserExit", "Subcommand",
    "env_name", "fail", "int_range", "json_flag", "kv", "one_line", "parse", "parse_bool",
    "print_json", "reader_gone", "runner_flags", "stale_after_flag", "state_dir_flag", "sub_parser",
]

Subcommand = Callable[[list[str]], int]


class Feature(Protocol):
    """A CLI module: its flags, its dispatcher, and its subcommands."""

    SUBCOMMANDS: dict[str, Subcommand]

    def add_flags(self, parser: argparse.ArgumentParser) -> None: ...

    def dispatch(self, args: argparse.Namespace) -> int | None: ...


class LowerLevelFormatter(logging.Formatter):
    """``warning: message`` lines on stderr."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


MAX_MESSAGE_CHARS = 1000


def one_line(text: str) -> str:
    """Collapse a message onto one line of at most :data:`MAX_MESSAGE_CHARS` characters.

    A message may quote input (a DID, a path); a hostile input must not make the
    error line itself huge.

    >>> one_line("a   b")
    'a b'
    >>> len(one_line("x" * 5000))
    1000
    """
    line = " ".join(text.split())
    if len(line) > MAX_MESSAGE_CHARS:
        suffix = f" ... ({len(line)} chars)"
        line = line[: MAX_MESSAGE_CHARS - len(suffix)] + suffix
    return line


def fail(message: str) -> NoReturn:
    """Refuse bad usage (exit 2)."""
    raise UsageError(message)


def print_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Print exactly one JSON document on stdout."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    print(json.dumps(data, indent=2, ensure_ascii=False))


class _StdoutGuard:
    """Stands in for ``sys.stdout`` while a command runs: once the output cannot be written
    (a closed pipe, ``tau-ops gate | head -1``; a full disk, ``> /dev/full``; no stdout at
    all, ``>&-``), further output is dropped instead of raising, so the command still
    finishes and its exit status is its verdict's. A failure other than a closed pipe is
    said once on stderr."""

    def __init__(self, stream: TextIO | None) -> None:
        self.original = stream
        self.stream: TextIO = stream if stream is not None else open(  # noqa: SIM115
            os.devnull, "w", encoding="utf-8")
        self.gone = stream is None
        self.failure: str | None = None

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except OSError as exc:
                self._drop(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError as exc:
                self._drop(exc)

    def _drop(self, exc: OSError) -> None:
        """Point the descriptor at the null device: what is still buffered (and the
        interpreter's flush at exit) then goes nowhere instead of failing again."""
        self.gone = True
        if not isinstance(exc, BrokenPipeError):
            self.failure = exc.strerror or str(exc)
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self.stream.fileno())
            finally:
                os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def reader_gone() -> Iterator[Callable[[], bool]]:
    """Run a command with ``sys.stdout`` guarded against a reader that went away.

    A command's exit status is its verdict's (1 for a gate that holds, 0 for a
    pass) whether or not its output could be written: writes to a closed pipe
    are dropped quietly, the command runs to its end, and its output is
    flushed before the guard is removed (a pipe's output is buffered until then).

    Yields
    ------
    callable
        Returns True once output has been dropped because the reader went away.

    Examples
    --------
    >>> with reader_gone() as gone:
    ...     print("shown")
    shown
    >>> gone()
    False
    """
    guard = _StdoutGuard(sys.stdout)
    sys.stdout = cast(TextIO, guard)
    try:
        yield lambda: guard.gone
    finally:
        guard.flush()
        sys.stdout = guard.original  # None when there was none
        if guard.original is None:
            guard.stream.close()
        if guard.failure is not None and sys.stderr is not None:
            print(f"error: cannot write the output: {guard.failure}", file=sys.stderr)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(value: object, *, limit: int = 200) -> str:
    """Text read from a file, safe for a terminal line: control characters escaped, cut.

    A value from a log line (a case id, an error code) may hold escape
    sequences or newlines that would recolour the terminal or forge a line;
    they are shown as ``\\x1b``, ``\\n``; past ``limit`` characters the text
    ends with ``...``; a missing value is ``-``.
    """
    if value is None:
        return "-"
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kv(value: Any) -> str:
    """Render a value for a ``key=value`` text line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items()) or "none"
    return str(value)


def state_dir_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--deployment-state-dir`` option every command shares."""
    parser.add_argument(
        "--deployment-state-dir",
        type=Path,
        default=Path(".tau/deployment"),
        metavar="DIR",
        help="deployment state directory (default %(default)s)",
    )


# Documented ranges of the numeric flags (docs/notes/cli.md); a value outside is exit 2.
QUEUE_LIMIT = (1, 65_536)
PROCESSED_CASE_CAP = (0, 1_000_000)
RETRY_MAX_ATTEMPTS = (1, 100)
RETRY_BASE_DELAY_MS = (0, 60_000)
STALE_AFTER_MS = (0, 366 * 24 * 3_600_000)


def runner_flags(parser: argparse._ActionsContainer) -> None:
    """The runner's limits (queue, processed cap, retries), shared by the runbook flags and
    ``tau-ops gate``."""
    low, high = QUEUE_LIMIT
    parser.add_argument("--deployment-queue-limit", type=int_range(low, high), default=64,
                        metavar="N", help=f"cases processed per cycle, {low}..{high} "
                        "(default %(default)s); the rest stays queued for the next cycle")
    low, high = PROCESSED_CASE_CAP
    parser.add_argument("--deployment-processed-case-cap", type=int_range(low, high),
                        default=10_000, metavar="N",
                        help=f"processed case keys kept for duplicate suppression, "
                        f"{low}..{high} (default %(default)s)")
    low, high = RETRY_MAX_ATTEMPTS
    parser.add_argument("--deployment-retry-max-attempts", type=int_range(low, high),
                        default=4, metavar="N", help=f"attempts per retryable case in one "
                        f"cycle, {low}..{high} (default %(default)s)")
    low, high = RETRY_BASE_DELAY_MS
    parser.add_argument("--deployment-retry-base-delay-ms", type=int_range(low, high, "ms"),
                        default=0, metavar="MS", help="base backoff between retries in "
                        f"milliseconds, doubled per attempt, {low}..{high} "
                        "(default %(default)s, no delay)")


def stale_after_flag(parser: argparse._ActionsContainer) -> None:
    """``--deployment-stale-after-ms``: when the last cycle is too old to promote on."""
    low, high = STALE_AFTER_MS
    parser.add_argument("--deployment-stale-after-ms", type=int_range(low, high, "ms"),
                        default=DEFAULT_STALE_AFTER_MS, metavar="MS",
                        help="a last cycle older than this many milliseconds holds the gate, "
                        f"{low}..{high} (default %(default)s = 24 h)")


CLOCK_SKEW_TOLERANCE_MS = (0, 366 * 24 * 3_600_000)


def clock_skew_flag(parser: argparse._ActionsContainer) -> None:
    """``--deployment-clock-skew-tolerance-ms``: how far in the future a last cycle may lie."""
    from tau_ops.health import DEFAULT_CLOCK_SKEW_TOLERANCE_MS

    low, high = CLOCK_SKEW_TOLERANCE_MS
    parser.add_argument("--deployment-clock-skew-tolerance-ms", type=int_range(low, high, "ms"),
                        default=DEFAULT_CLOCK_SKEW_TOLERANCE_MS, metavar="MS",
                        help="a last cycle dated further than this many milliseconds ahead of "
                        f"this clock holds the gate (clock_skew), {low}..{high} "
                        "(default %(default)s = 5 minutes)")


def json_flag(parser: argparse._ActionsContainer, what: str = "the result") -> None:
    """``--json``: print one JSON document instead of text."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one JSON document (default: text lines)")


def sub_parser(prog: str, description: str, *, environment: bool = True) -> ErrorParser:
    """A parser for one subcommand (see :class:`~tau_ops.cli._parser.ErrorParser`);
    ``environment=False`` makes its options ignore ``TAU_*`` variables."""
    return ErrorParser(prog=f"tau-ops {prog}", description=description,
                       environment=environment)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` (environment variables apply: see :mod:`tau_ops.cli._parser`)."""
    return parser.parse_args(argv)
