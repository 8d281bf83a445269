"""The ``tau-ops`` command line: parse flags, call one library function, render, exit.

Two ways in, routed to the same functions: the runbook's flags verbatim
(``tau-ops --deployment-contract-runner ...``) and subcommands
(``tau-ops demo``, ``tau-ops gate`` ...). Each concern lives in its own module
under ``tau_ops/cli/`` exposing ``add_flags``, ``dispatch`` and
``SUBCOMMANDS`` (each a function whose docstring's first line, after
```tau-ops NAME``: ``, is its one-line description in ``tau-ops --help``); a subcommand imports its
own module alone (:data:`SUBCOMMAND_MODULES`), so its start-up pays only for
what it uses. Every ``TauOpsError`` becomes a one-line ``error:`` and its exit code; any
other exception, a Rust panic from a dependency included, is an internal error:
one line and exit status 70 (``EXIT_INTERNAL_ERROR``), never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, cast

import tau_ops
from tau_ops.cli import _base
from tau_ops.cli._parser import EnvHelpFormatter
from tau_ops.errors import EXIT_FAILED, EXIT_INTERNAL_ERROR, EXIT_USAGE, TauOpsError

# Order matters: the first feature whose flags were given handles the command.
FEATURE_MODULES: tuple[str, ...] = (
    "deployment", "wasm", "identity", "gateway", "analysis", "ops", "schema", "fleet", "export",
)

SUBCOMMAND_MODULES: dict[str, str] = {
    "demo": "ops", "diagnose": "ops", "gate": "ops", "runner": "ops", "snapshot": "ops",
    "did-resolve": "identity", "did-sign": "identity", "did-verify": "identity",
    "export": "export", "fleet": "fleet", "gateway": "gateway", "report": "analysis",
    "schema": "schema", "wasm-smoke": "wasm",
}
"""Which feature module holds each subcommand: ``tau-ops fleet ...`` imports the fleet
module alone, not every feature's libraries (a test keeps this table complete)."""


def _feature(name: str) -> _base.Feature:
    return cast(_base.Feature, importlib.import_module(f"tau_ops.cli.{name}"))


def _features() -> list[_base.Feature]:
    return [_feature(name) for name in FEATURE_MODULES]


def __getattr__(name: str) -> Any:
    """``FEATURES`` and the feature modules (``tau_ops.cli.ops``) load on first use."""
    if name == "FEATURES":
        return tuple(_features())
    if name in FEATURE_MODULES:
        return _feature(name)
    raise AttributeError(f"module 'tau_ops.cli' has no attribute {name!r}")


class _MainFormatter(argparse.RawDescriptionHelpFormatter, EnvHelpFormatter):
    """Main help: option help as everywhere, the subcommand table kept as laid out."""


class _PrintVersion(argparse.Action):
    """``--version``: reads the package metadata only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS,
                         help=kwargs.get("help"))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"tau-ops {tau_ops.__version__}")
        parser.exit()


def describe(command: _base.Subcommand) -> str:
    """A subcommand's one-line description: its docstring's first line after ```tau-ops X``:``.

    Examples
    --------
    >>> from tau_ops.cli import ops
    >>> describe(ops.gate)
    'decide promotion, pass (exit 0) or hold (exit 1), with evidence.'
    """
    first = (command.__doc__ or "").strip().splitlines()[0] if command.__doc__ else ""
    if first.startswith("``") and "``:" in first:
        first = first.split("``:", 1)[1]
    return first.strip()


def build_parser(features: list[_base.Feature]) -> argparse.ArgumentParser:
    """The runbook flag parser: every feature's flags, ``--version``, the subcommand table."""
    table = _subcommands(features)
    width = max(map(len, table), default=0)
    epilog = "subcommands (tau-ops SUBCOMMAND --help for their flags):\n" + "\n".join(
        f"  {name.ljust(width)}  {describe(table[name])}" for name in sorted(table))
    epilog += ("\n\nexit status: 0 success; 1 the operation ran and failed (gate hold, "
               "contract violation,\nnon-compliant module); 2 bad usage or input; "
               "70 internal error (a bug).\nevery option also reads TAU_<OPTION> from the "
               f"environment; lists are '{os.pathsep}'-separated.")
    parser = _base.ErrorParser(
        prog="tau-ops",
        description="Run and review deployment rollouts (runbook flags or subcommands).",
        epilog=epilog,
        formatter_class=_MainFormatter,
    )
    parser.add_argument("--version", action=_PrintVersion,
                        help="print the installed version and exit")
    for feature in features:
        feature.add_flags(parser)
    return parser


def _subcommands(features: list[_base.Feature]) -> dict[str, _base.Subcommand]:
    table: dict[str, _base.Subcommand] = {}
    for feature in features:
        table.update(feature.SUBCOMMANDS)
    return table


def _run(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMAND_MODULES:  # a subcommand: import its module alone
        command = _feature(SUBCOMMAND_MODULES[argv[0]]).SUBCOMMANDS.get(argv[0])
        if command is not None:
            return command(argv[1:])
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
        with _base.reader_gone():
            return _run(list(sys.argv[1:] if argv is None else argv))
    except TauOpsError as exc:
        print("error: " + _base.one_line(str(exc)), file=sys.stderr)
        return exc.exit_code
    except _base.ParserExit as exc:
        return exc.code
    except BrokenPipeError:  # output written past the guard (not through sys.stdout)
        print("error: output closed before the command finished", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # an output or input path the OS refused: bad input, not a bug
        # A call relative to a descriptor can name a bare fd number: name no file then.
        where = f" {exc.filename}" if isinstance(exc.filename, str) and exc.filename else ""
        print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001  a bug, a Rust panic (PanicException) included
        if os.environ.get("TAU_OPS_DEBUG"):
            raise
        print(f"error: internal error: {type(exc).__name__}: {_base.one_line(str(exc))} "
              "(set TAU_OPS_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        if argv is None:  # this process is the tau-ops program and ends now
            # Exit without the collector's passes over every imported module's objects
            # (polars, duckdb, pydantic): about 15% of a short command such as `report`.
            gc.freeze()
