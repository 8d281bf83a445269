"""Shared pieces of the command line: the parser, env defaults, output helpers."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, Protocol

from pydantic import BaseModel

from tau_ops.errors import UsageError

Subcommand = Callable[[list[str]], int]


class Feature(Protocol):
    """A CLI module: its flags, its dispatcher, and its subcommands."""

    SUBCOMMANDS: dict[str, Subcommand]

    def add_flags(self, parser: argparse.ArgumentParser) -> None: ...

    def dispatch(self, args: argparse.Namespace) -> int | None: ...


class ParserExit(Exception):
    """Raised instead of ``sys.exit`` by the parser (help, usage errors)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ErrorParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one ``error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message.rstrip(), file=sys.stderr)
        raise ParserExit(status)


class LowerLevelFormatter(logging.Formatter):
    """``warning: message`` lines on stderr."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def env_name(option: str) -> str:
    """``--deployment-state-dir`` -> ``TAU_DEPLOYMENT_STATE_DIR``."""
    return "TAU_" + option.lstrip("-").upper().replace("-", "_")


def apply_env_defaults(parser: argparse.ArgumentParser) -> None:
    """Let every value-taking flag default to its ``TAU_*`` environment variable."""
    for action in parser._actions:
        if action.nargs == 0 or not action.option_strings:
            continue
        long = [o for o in action.option_strings if o.startswith("--")]
        if not long:
            continue
        value = os.environ.get(env_name(long[0]))
        if value is not None and value != "":
            action.default = value
            action.required = False


def one_line(text: str) -> str:
    """Collapse a message onto one line."""
    return " ".join(text.split())


def fail(message: str) -> NoReturn:
    """Refuse bad usage (exit 2)."""
    raise UsageError(message)


def print_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Print exactly one JSON document on stdout."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    print(json.dumps(data, indent=2, ensure_ascii=False))


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
        help="deployment state directory (default .tau/deployment)",
    )


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def sub_parser(prog: str, description: str) -> ErrorParser:
    """A parser for one subcommand; call :func:`finish` after adding its flags."""
    return ErrorParser(prog=f"tau-ops {prog}", description=description)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Apply env defaults, then parse."""
    apply_env_defaults(parser)
    return parser.parse_args(argv)
