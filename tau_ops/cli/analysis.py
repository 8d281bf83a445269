"""``tau-ops report``: write the incident report (HTML and chart images) of a state dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from tau_ops.cli._base import (
    Subcommand,
    non_negative_int,
    parse,
    print_json,
    state_dir_flag,
    sub_parser,
)
from tau_ops.cli.deployment import clock_skew_flag
from tau_ops.health import DEFAULT_STALE_AFTER_MS


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: the report is a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    return None


def report(argv: list[str]) -> int:
    """``tau-ops report``: HTML report plus one image per chart."""
    from tau_ops.analysis.report import write_report  # polars/altair only when asked for

    parser = sub_parser("report", "Write an HTML incident report with chart images.")
    state_dir_flag(parser)
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="folder for report.html and the chart images")
    parser.add_argument("--format", choices=("svg", "png"), default="svg",
                        help="image format of the chart files (default svg)")
    parser.add_argument("--every", metavar="WIDTH",
                        help="time bucket width such as 15m, 1h, 1d (default: fit the log)")
    parser.add_argument("--deployment-stale-after-ms", type=non_negative_int,
                        default=DEFAULT_STALE_AFTER_MS, metavar="MS",
                        help="a last cycle older than this holds the gate (default 24 h)")
    clock_skew_flag(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parse(parser, argv)
    result = write_report(args.deployment_state_dir, args.output,
                          image_format=args.format, every=args.every,
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
