"""The ``tau-ops`` command line: parse flags, call one library function, render, exit.

Two ways in, routed to the same functions: the runbook's flags verbatim
(``tau-ops --deployment-contract-runner ...``) and subcommands
(``tau-ops demo``, ``tau-ops gate`` ...). Each concern lives in its own module
under ``tau_ops/cli/`` exposing ``add_flags``, ``dispatch`` and
``SUBCOMMANDS``. Every ``TauOpsError`` becomes a one-line ``error:`` and its
exit code; nothing else escapes as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tau_ops.cli import (
    _base,
    analysis,
    deployment,
    export,
    fleet,
    gateway,
    identity,
    ops,
    schema,
    wasm,
)
from tau_ops.errors import TauOpsError

# Order matters: the first feature whose flags were given handles the command.
FEATURES: tuple[_base.Feature, ...] = (
    deployment, wasm, identity, gateway, analysis, ops, schema, fleet, export,
)


def _features() -> list[_base.Feature]:
    return list(FEATURES)


def build_parser(features: list[_base.Feature]) -> argparse.ArgumentParser:
    """The flag parser: every feature's flags, env defaults applied."""
    parser = _base.ErrorParser(
        prog="tau-ops",
        description="Run and review deployment rollouts (runbook flags or subcommands).",
        epilog="subcommands: " + ", ".join(sorted(_subcommands(features))),
    )
    for feature in features:
        feature.add_flags(parser)
    _base.apply_env_defaults(parser)
    return parser


def _subcommands(features: list[_base.Feature]) -> dict[str, _base.Subcommand]:
    table: dict[str, _base.Subcommand] = {}
    for feature in features:
        table.update(feature.SUBCOMMANDS)
    return table


def _run(argv: list[str]) -> int:
    features = _features()
    subcommands = _subcommands(features)
    if argv and argv[0] in subcommands:
        return subcommands[argv[0]](argv[1:])
    parser = build_parser(features)
    args = parser.parse_args(argv)
    for feature in features:
        code = feature.dispatch(args)
        if code is not None:
            return code
    _base.fail("nothing to do: give a runbook flag such as --deployment-contract-runner, "
               "or a subcommand (see tau-ops --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tau-ops`` console script; returns the exit status."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_base.LowerLevelFormatter())
    logger = logging.getLogger("tau_ops")
    if not logger.handlers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if os.environ.get("TAU_OPS_VERBOSE") else logging.WARNING)
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except TauOpsError as exc:
        print("error: " + _base.one_line(str(exc)), file=sys.stderr)
        return exc.exit_code
    except _base.ParserExit as exc:
        return exc.code
    except BrokenPipeError:
        return 0
    except OSError as exc:  # an output or input path the OS refused: bad input, not a bug
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, no traceback unless asked for
        if os.environ.get("TAU_OPS_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {_base.one_line(str(exc))} "
              "(set TAU_OPS_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
