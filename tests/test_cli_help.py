"""``tau-ops`` explains itself: help with defaults, subcommand descriptions, ``--version``."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
from pathlib import Path

import pytest
from builders import run_cli

import tau_ops
from tau_ops.cli import FEATURES, _parser, _subcommands, build_parser, describe


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def _subcommand_parsers(monkeypatch: pytest.MonkeyPatch) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's real parser, caught at the moment the subcommand parses."""

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Captured(self)

    monkeypatch.setattr(_parser.ErrorParser, "parse_known_args", capture)
    parsers = {}
    for name, command in _subcommands(list(FEATURES)).items():
        with pytest.raises(_Captured) as caught:
            command([])
        parsers[name] = caught.value.parser
    return parsers


def _default_text(value: object) -> str | None:
    """How a default must appear in help, or None when the option has no default."""
    if value is None or value is False or value == [] or value == argparse.SUPPRESS:
        return None
    if isinstance(value, Path) and value.is_absolute():
        return value.name  # a file shipped in the package: its name, not this checkout's path
    return str(value)


def test_every_option_has_help_naming_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = {"tau-ops": build_parser(list(FEATURES)),
               **_subcommand_parsers(monkeypatch)}
    problems = []
    for name, parser in parsers.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.default == argparse.SUPPRESS:  # --help, --version
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                problems.append(f"{label}: no help")
                continue
            text = formatter._expand_help(action)
            shown = _default_text(action.default)
            if action.option_strings and "default" not in text and "required" not in text:
                problems.append(f"{label}: help does not mention a default: {text!r}")
            if shown is not None and shown not in text:
                problems.append(f"{label}: default {shown!r} not in help {text!r}")
    assert problems == []
    assert {n for n, p in parsers.items() if not p.description and n != "tau-ops"} == set()


def test_numeric_options_state_their_range_and_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = [build_parser(list(FEATURES)), *_subcommand_parsers(monkeypatch).values()]
    missing = []
    for parser in parsers:
        for action in parser._actions:
            if getattr(action.type, "__name__", "").startswith("int["):
                low_high = action.type.__name__[4:-1]  # type: ignore[union-attr]
                if low_high not in (action.help or ""):
                    missing.append(f"{parser.prog} {action.option_strings[0]}")
    assert missing == []


def test_main_help_lists_every_subcommand_with_a_description() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    table = _subcommands(list(FEATURES))
    listed = dict(re.findall(r"^  (\S+) +(\S.*)$", result.stdout, flags=re.MULTILINE))
    assert {name: listed.get(name) for name in table} == {
        name: describe(command) for name, command in table.items()}
    assert all(describe(command) for command in table.values())
    assert "70 internal error" in result.stdout


def test_help_names_the_environment_variable_of_each_option() -> None:
    result = run_cli("gate", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "[env TAU_DEPLOYMENT_QUEUE_LIMIT]" in text
    assert "[env TAU_FIXTURE, ':'-separated]" in text
    assert "[env TAU_JSON=true|false]" in text


def test_version_comes_from_package_metadata() -> None:
    installed = importlib.metadata.version("tau-ops")
    assert tau_ops.__version__ == installed
    result = run_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"tau-ops {installed}\n", "")


@pytest.mark.parametrize(("argv", "actions"), [
    (["gateway"], "action is one of: serve"),
    (["runner"], "action is one of: pause, resume, status"),
])
def test_subcommand_without_action_says_what_the_actions_are(argv: list[str],
                                                             actions: str) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert result.stderr == ("error: the following arguments are required: action "
                             f"({actions})\n")


def test_channel_store_inspect_of_a_missing_channel_reports_exists_false(
        tmp_path: Path) -> None:
    """Seed behaviour: inspecting a channel with no files is not an error (exit 0)."""
    result = run_cli("--channel-store-root", tmp_path / "store",
                     "--channel-store-inspect", "deployment/nope")
    assert result.returncode == 0, result.stderr
    assert " exists=false " in result.stdout
    assert not (tmp_path / "store").exists()


def test_a_one_cycle_summary_says_cycle_not_cycles(tmp_path: Path) -> None:
    from builders import event_line, write_event_log

    from tau_ops.analysis import load_events, summary

    write_event_log(tmp_path / "runtime-events.jsonl",
                    event_line(1_700_000_000_000, "degraded", ["retry_attempted"],
                               retry_attempts=1))
    line = summary(load_events(tmp_path)).line
    assert line.startswith("degraded since 2023-11-14 22:13:20 UTC: 1 cycle 2023-11-14 22:13 ")
