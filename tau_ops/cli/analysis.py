"""``tau-ops report``: write the incident report (HTML and chart images) of a state dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from tau_ops.cli._base import Subcommand, json_flag, parse, print_json, state_dir_flag, sub_parser


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: the report is a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    return None


def report(argv: list[str]) -> int:
    """``tau-ops report``: write an HTML incident report with one image per chart."""
    from tau_ops.analysis.report import write_report  # polars/altair only when asked for

    parser = sub_parser("report", "Write an HTML incident report with chart images.")
    state_dir_flag(parser)
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="folder for report.html and the chart images (required)")
    parser.add_argument("--format", choices=("svg", "png"), default="svg",
                        help="image format of the chart files (default %(default)s)")
    parser.add_argument("--every", metavar="WIDTH",
                        help="time bucket width such as 15m, 1h, 1d (default: fit the log)")
    json_flag(parser, "the result")
    args = parse(parser, argv)
    result = write_report(args.deployment_state_dir, args.output,
                          image_format=args.format, every=args.every)
    if args.json:
        print_json(result)
    else:
        print(f"report: {result.html_path}")
        for path in result.image_paths:
            print(f"chart: {path}")
        print(f"summary: {result.summary}")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {"report": report}
