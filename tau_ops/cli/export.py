"""``tau-ops export events --to DIR SOURCE...``: events as a Hive-partitioned Parquet dataset."""

from __future__ import annotations

import argparse

from tau_ops.cli._base import Subcommand, parse, print_json, sub_parser


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: export is a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    """Runbook flags never reach this module."""
    return None


def _export(argv: list[str]) -> int:
    """``tau-ops export events``: write events as Hive-partitioned Parquet, incrementally."""
    from tau_ops.analysis.export import export_events

    parser = sub_parser(
        "export",
        "Write the events of one or many sources to DIR/source=NAME/date=YYYY-MM-DD/ as "
        "Parquet (incremental: a second export adds only new cycles; lines of one source that "
        "read to the same values are one cycle).",
    )
    parser.add_argument("what", choices=("events",), help="what to export: events")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a state dir, events file or snapshot archive, optionally named "
                        "NAME=PATH (NAME: A-Z a-z 0-9 . _ -; default name: the path with each "
                        "byte outside A-Z a-z 0-9 . - as _XX, e.g. a/b as a_2Fb); one source "
                        "given twice is refused")
    parser.add_argument("--to", required=True, metavar="DIR",
                        help="dataset root: a local path or a URI pyarrow opens "
                        "(file://, s3://, gs://); required")
    parser.add_argument("--no-cache", action="store_true",
                        help="read the logs without the analysis cache (default: use it)")
    parser.add_argument("--json", action="store_true",
                        help="print the export report as one JSON document (default: text)")
    args = parse(parser, argv)
    report = export_events(args.sources, args.to, cache=not args.no_cache)
    if args.json:
        print_json(report)
    else:
        print(f"export events: destination={report.destination} "
              f"cycles_added={report.cycles_added} partitions_written={report.partitions_written}")
        for source in report.sources:
            print(f"  source={source.source} cycles_read={source.cycles_read} "
                  f"cycles_added={source.cycles_added} "
                  f"partitions_written={source.partitions_written} path={source.path}")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {"export": _export}
