"""``tau-ops fleet status|gate MEMBER...``: one verdict over many runners."""

from __future__ import annotations

import argparse

from tau_ops.cli._base import (
    Subcommand,
    clock_skew_flag,
    int_range,
    parse,
    print_json,
    stale_after_flag,
    sub_parser,
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: fleets are a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    """Runbook flags never reach this module."""
    return None


def _fraction(text: str) -> float:
    from tau_ops.fleet_policy import exact_fraction

    try:
        return exact_fraction(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.0 < value <= 600.0:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600, got {text}")
    return value


def _age(ms: int, readable: bool) -> str:
    if not readable:
        return "-"
    seconds = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def render(report: object) -> str:
    """Text form: the verdict line, the reasons, then one row per member."""
    from tau_ops.fleet import FleetReport

    assert isinstance(report, FleetReport)
    lines = [
        f"fleet gate: rollout_gate={report.fleet_gate} members={report.member_count} "
        f"pass={report.pass_count} reasons={','.join(report.fleet_gate_reasons) or 'none'}"
    ]
    lines += [f"  hold: {detail}" for detail in report.fleet_gate_details]
    header = ("gate", "health", "age", "streak", "backlog", "kind", "member", "reasons")
    rows = [header] + [
        (m.rollout_gate, m.health_state or "-", _age(m.state_age_ms, m.readable),
         str(m.failure_streak), str(m.queue_depth), m.kind,
         m.name + (" [" + ",".join(f"{k}={v}" for k, v in sorted(m.labels.items())) + "]"
                   if m.labels else ""),
         ",".join(m.rollout_gate_reasons) or "-")
        for m in report.members
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                     + "  " + row[-1])
    return "\n".join(lines)


def _fleet(argv: list[str]) -> int:
    """``tau-ops fleet``: one rollout verdict (status or gate) over many runners."""
    from tau_ops.fleet import FleetPolicy, fleet_status

    parser = sub_parser(
        "fleet",
        "One rollout verdict over many runners: state dirs (paths or globs), snapshot "
        "archives (*.tar.gz, read without extracting) and gateway URLs (token from "
        "TAU_GATEWAY_AUTH_TOKEN). 'status' reports (exit 0); 'gate' exits 0 pass, 1 hold.",
    )
    parser.add_argument("action", choices=("status", "gate"),
                        help="status: report every member; gate: also exit 1 when the fleet holds")
    parser.add_argument("members", nargs="+", metavar="MEMBER",
                        help="a state dir, glob, snapshot archive or gateway URL, optionally "
                        "prefixed with labels as key=value,...@MEMBER")
    parser.add_argument("--min-pass-fraction", type=_fraction, default=1.0, metavar="F",
                        help="share of members that must pass, 0 to 1 (default %(default)s: all)")
    parser.add_argument("--require", action="append", default=[], metavar="KEY=VALUE",
                        help="every member labelled KEY=VALUE must pass, and one must exist "
                        "(repeatable; default none)")
    stale_after_flag(parser)
    clock_skew_flag(parser)
    parser.add_argument("--timeout-s", type=_seconds, default=5.0, metavar="S",
                        help="deadline per member in seconds, over 0 and at most 600; "
                        "later holds the fleet (default %(default)s)")
    parser.add_argument("--max-workers", type=int_range(1, 32), default=16, metavar="N",
                        help="members read at once, 1..32 (default %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as one JSON document (default: text)")
    args = parse(parser, argv)
    report = fleet_status(
        args.members,
        policy=FleetPolicy(min_pass_fraction=args.min_pass_fraction, require=args.require),
        stale_after_ms=args.deployment_stale_after_ms, timeout_s=args.timeout_s,
        max_workers=args.max_workers,
        skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms,
    )
    if args.json:
        print_json(report)
    else:
        print(render(report))
    return 1 if args.action == "gate" and report.fleet_gate == "hold" else 0


SUBCOMMANDS: dict[str, Subcommand] = {"fleet": _fleet}
