"""The one argument parser of every ``tau-ops`` command and subcommand.

:class:`ErrorParser` is ``argparse`` with the rules a script can rely on,
applied to every option of every parser by one mechanism:

- a bad flag or value is one ``error:`` line and exit status 2
  (:class:`~tau_ops.errors.UsageError`), never a traceback;
- every option can come from the environment as ``TAU_`` plus its long name
  in upper snake case (``--fixture`` -> ``TAU_FIXTURE``); the command line
  wins; an empty variable counts as unset; a repeatable option takes an
  ``os.pathsep``-separated list (``TAU_FIXTURE=a.json:b.json`` on POSIX); an
  error caused by a variable names the variable;
- boolean flags take the seed's forms: ``--flag``, ``--flag=true``,
  ``--flag=false`` and ``TAU_FLAG=true|false`` (exactly these spellings, as
  clap's ``bool`` parser);
- a value that is not valid UTF-8 (``surrogateescape`` bytes from argv or the
  environment) is refused with the flag's or variable's name;
- ``--help`` names each option's variable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from tau_ops.errors import UsageError

ENV_PREFIX = "TAU_"
TRUE_FALSE = ("true", "false")
_NOT_GIVEN = object()


class ParserExit(Exception):
    """Raised instead of ``sys.exit`` by the parser (``--help``, ``--version``)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def env_name(option: str) -> str:
    """The environment variable of an option.

    Examples
    --------
    >>> env_name("--deployment-state-dir")
    'TAU_DEPLOYMENT_STATE_DIR'
    """
    return ENV_PREFIX + option.lstrip("-").upper().replace("-", "_")


def is_utf8(text: str) -> bool:
    """Whether ``text`` holds no lone surrogate (``surrogateescape`` of non-UTF-8 bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_bool(text: str) -> bool:
    """argparse type: the seed's boolean spellings, ``true`` or ``false``.

    Raises
    ------
    argparse.ArgumentTypeError
        For any other spelling.

    Examples
    --------
    >>> parse_bool("false")
    False
    """
    if text not in TRUE_FALSE:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text == "true"


def int_range(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` to ``high`` (both included).

    Parameters
    ----------
    low, high
        The accepted range, in the flag's unit.
    unit
        Shown in the error message (``"ms"``, ``"MiB"``...).

    Returns
    -------
    Callable[[str], int]
        The converter; it raises ``argparse.ArgumentTypeError`` naming the range.

    Examples
    --------
    >>> int_range(1, 100)("4")
    4
    """
    suffix = f" {unit}" if unit else ""

    def convert(text: str) -> int:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
        value = int(digits) if len(digits) <= 30 else high + 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be between {low} and {high}{suffix}, got {digits[:30]}"
                + ("..." if len(digits) > 30 else ""))
        return value

    convert.__name__ = f"int[{low}..{high}]"
    return convert


class BoolFlag(argparse.Action):
    """A boolean flag (registered as ``store_true``): ``--flag``, ``--flag=true|false``."""

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = False,
                 required: bool = False, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, const=True, default=default,
                         required=required, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)


class EnvHelpFormatter(argparse.HelpFormatter):
    """Help that names each option's environment variable."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        variable = _variable(action)
        if variable is None or text == argparse.SUPPRESS:
            return text
        if isinstance(action, BoolFlag):
            return f"{text} [env {variable}=true|false]".strip()
        if isinstance(action, argparse._AppendAction):
            return f"{text} [env {variable}, '{os.pathsep}'-separated]".strip()
        return f"{text} [env {variable}]".strip()


def _variable(action: argparse.Action) -> str | None:
    """The action's variable, or None when it cannot come from the environment."""
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    if getattr(action, "no_environment", False):
        return None
    if action.nargs == 0 and not isinstance(action, BoolFlag):
        return None
    long = [o for o in action.option_strings if o.startswith("--")]
    return env_name(long[0]) if long else None


_ActionT = TypeVar("_ActionT", bound=argparse.Action)


class ErrorParser(argparse.ArgumentParser):
    """argparse with tau-ops's rules (see the module docstring); errors raise ``UsageError``."""

    def __init__(self, *args: Any, environment: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", EnvHelpFormatter)
        self.environment = environment
        super().__init__(*args, **kwargs)
        self.register("action", "store_true", BoolFlag)

    def _add_action(self, action: _ActionT) -> _ActionT:
        if not self.environment:  # e.g. the demo: an operator's TAU_* must never reach it
            action.no_environment = True  # type: ignore[attr-defined]
        return super()._add_action(action)

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            for action in self._actions:
                if not action.option_strings and action.choices and action.dest in message:
                    message += f" ({action.dest} is one of: {', '.join(action.choices)})"
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message.rstrip(), file=sys.stderr)
        raise ParserExit(status)

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        if isinstance(arg_string, str) and not is_utf8(arg_string):
            raise argparse.ArgumentError(action, "is not valid UTF-8")
        return super()._get_value(action, arg_string)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        argv, explicit = self._bool_forms(list(sys.argv[1:] if args is None else args))
        namespace = argparse.Namespace() if namespace is None else namespace
        from_env = []
        relaxed = []
        for action in self._actions:
            variable = _variable(action)
            raw = os.environ.get(variable) if variable else None
            if variable is None or not raw:
                continue
            from_env.append((action, variable, raw))
            if not hasattr(namespace, action.dest):
                setattr(namespace, action.dest, _NOT_GIVEN)
            if action.required:
                action.required = False
                relaxed.append(action)
        try:
            parsed, extras = super().parse_known_args(argv, namespace)
        finally:
            for action in relaxed:
                action.required = True
        for action, variable, raw in from_env:
            if getattr(parsed, action.dest) is _NOT_GIVEN:
                setattr(parsed, action.dest, self._from_env(action, variable, raw))
        for dest, value in explicit.items():
            setattr(parsed, dest, value)
        return parsed, extras

    def _bool_forms(self, argv: list[str]) -> tuple[list[str], dict[str, bool]]:
        """Take ``--flag=true|false`` out of argv; the values win over the environment."""
        kept: list[str] = []
        explicit: dict[str, bool] = {}
        for index, token in enumerate(argv):
            if token == "--":
                kept += argv[index:]
                break
            name, equals, value = token.partition("=")
            action = self._option_string_actions.get(name) if token.startswith("--") else None
            if equals and isinstance(action, BoolFlag):
                try:
                    explicit[action.dest] = parse_bool(value)
                except argparse.ArgumentTypeError as exc:
                    self.error(f"argument {name}: {exc}")
                continue
            if isinstance(action, BoolFlag):
                explicit.pop(action.dest, None)
            kept.append(token)
        return kept, explicit

    def _from_env(self, action: argparse.Action, variable: str, raw: str) -> Any:
        """Convert a variable's text as the flag's own value would be; errors name both."""
        long = next(o for o in action.option_strings if o.startswith("--"))
        where = f"{variable} ({long})"
        try:
            if not is_utf8(raw):
                raise argparse.ArgumentTypeError("is not valid UTF-8")
            if isinstance(action, BoolFlag):
                return parse_bool(raw)
            if isinstance(action, argparse._AppendAction):
                items = raw.split(os.pathsep)
                if "" in items:
                    raise argparse.ArgumentTypeError(
                        f"has an empty entry in its '{os.pathsep}'-separated list")
                return [self._convert(action, item) for item in items]
            return self._convert(action, raw)
        except (argparse.ArgumentTypeError, argparse.ArgumentError, TypeError,
                ValueError) as exc:
            message = exc.message if isinstance(exc, argparse.ArgumentError) else str(exc)
            raise UsageError(f"environment variable {where}: {message}") from None

    def _convert(self, action: argparse.Action, text: str) -> Any:
        convert = action.type if callable(action.type) else str
        value = convert(text)
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {choices})")
        return value
