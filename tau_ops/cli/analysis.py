"""``tau-ops report``: write the incident report (HTML, images on request) of a state dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from tau_ops.cli import _base
from tau_ops.cli._base import Subcommand, json_flag, parse, print_json, sub_parser


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: the report is a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    return None


def report(argv: list[str]) -> int:
    """``tau-ops report``: write an HTML incident report (and chart images when asked)."""
    from tau_ops.analysis.report import write_report  # polars only when asked for

    parser = sub_parser("report", "Write an HTML incident report whose charts draw offline.")
    parser.add_argument(
        "--deployment-state-dir", type=Path, action="append", metavar="DIR",
        help="deployment state directory or 'tau-ops snapshot' archive (*.tar.gz, verified, "
             "read without extracting; default .tau/deployment); repeat it for a fleet "
             "report with one section per source")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="folder for report.html and any chart images (required)")
    parser.add_argument("--image-format", "--format", dest="image_format",
                        choices=("svg", "png"), default=None,
                        help="also write each chart as an image file of this format, rendered "
                             "by vl-convert (about 1 s more); default: none, the page draws "
                             "its charts itself")
    parser.add_argument("--every", metavar="WIDTH",
                        help="time bucket width such as 15m, 1h, 1d (default: fit the log)")
    _base.stale_after_flag(parser)
    _base.clock_skew_flag(parser)
    json_flag(parser, "the result")
    args = parse(parser, argv)
    dirs = args.deployment_state_dir or [Path(".tau/deployment")]
    result = write_report(dirs if len(dirs) > 1 else dirs[0], args.output,
                          image_format=args.image_format, every=args.every,
                          stale_after_ms=args.deployment_stale_after_ms,
                          skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms)
    if args.json:
        print_json(result)
    else:
        print(f"report: {result.html_path}")
        for path in result.image_paths:
            print(f"chart: {path}")
        print(f"recommendation: {result.recommendation}")
        print(f"summary: {result.summary}")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {"report": report}
