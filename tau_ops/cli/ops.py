"""Subcommands of the operator workflows: demo, gate, snapshot, runner pause/resume, diagnose."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import BaseModel

from tau_ops.cli import _base
from tau_ops.cli._base import Subcommand, json_flag, kv, print_json, shown
from tau_ops.clock import wall_clock_ms
from tau_ops.timefmt import age_text, iso_utc


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The workflows are subcommands only; no runbook flags to add."""


def dispatch(args: argparse.Namespace) -> int | None:
    return None


def _render(report: BaseModel) -> str:
    from tau_ops.channel_store import ChannelInspectReport
    from tau_ops.cli.deployment import render_channel, render_cycle, render_health, render_status
    from tau_ops.cli.wasm import render_package
    from tau_ops.runner import CycleReport
    from tau_ops.status import DeploymentStatusReport, TransportHealthReport
    from tau_ops.wasm.package import PackageReport

    if isinstance(report, PackageReport):
        return render_package(report)
    if isinstance(report, CycleReport):
        return render_cycle(report)
    if isinstance(report, DeploymentStatusReport):
        return render_status(report)
    if isinstance(report, TransportHealthReport):
        return render_health(report)
    if isinstance(report, ChannelInspectReport):
        return render_channel(report)
    raise TypeError(type(report).__name__)


def demo(argv: list[str]) -> int:
    """``tau-ops demo``: run the deterministic deployment demo, showing each step's command."""
    from tau_ops.ops.demo import DEMO_FIXTURE, DEMO_MODULE, DEMO_STATE_DIR, run_demo
    from tau_ops.status import TransportHealthReport

    # No TAU_* defaults: the operator's TAU_DEPLOYMENT_STATE_DIR must never become the demo's.
    parser = _base.sub_parser("demo", "Run the deterministic deployment demo.",
                              environment=False)
    parser.add_argument("--deployment-state-dir", type=Path, default=DEMO_STATE_DIR,
                        metavar="DIR", help="demo state dir: new, empty, or made by an "
                        "earlier demo (default .tau/demo-deployment; never taken from the "
                        "environment)")
    parser.add_argument("--module", type=Path, default=DEMO_MODULE, metavar="WASM",
                        help="module the demo packages (default: edge-runtime.wasm, "
                        "shipped with tau-ops)")
    parser.add_argument("--fixture", type=Path, default=DEMO_FIXTURE, metavar="FILE",
                        help="fixture the demo runs (default: rollout-pass.json, shipped with "
                        "tau-ops)")
    args = _base.parse(parser, argv)
    steps = run_demo(state_dir=args.deployment_state_dir, module=args.module,
                     fixture=args.fixture)
    for number, step in enumerate(steps, start=1):
        print(f"== step {number}/{len(steps)}: {step.name}")
        print(f"$ {step.command}")
        print(_render(step.report))
        print()
    health = next(s.report for s in steps if isinstance(s.report, TransportHealthReport))
    print(f"deployment demo: rollout_gate={health.rollout_gate} "
          f"health_state={health.health_state}")
    return 0 if health.rollout_gate == "pass" else 1


def _runner_flags(parser: argparse.ArgumentParser) -> None:
    _base.runner_flags(parser)
    _base.stale_after_flag(parser)
    _base.clock_skew_flag(parser)


def gate(argv: list[str]) -> int:
    """``tau-ops gate``: decide promotion, pass (exit 0) or hold (exit 1), with evidence."""
    from tau_ops.ops.gate import DEFAULT_EVIDENCE_ROOT, promotion_gate

    parser = _base.sub_parser("gate", "Decide whether promotion may continue, with evidence.")
    _base.state_dir_flag(parser)
    parser.add_argument("--fixture", type=Path, action="append", default=[], metavar="FILE",
                        help="fixture to run; repeat to promote step by step (default none: "
                        "judge the last recorded cycle)")
    _runner_flags(parser)
    parser.add_argument("--evidence-dir", type=Path, default=DEFAULT_EVIDENCE_ROOT,
                        metavar="DIR", help="evidence root (default %(default)s)")
    json_flag(parser, "the verdict")
    args = _base.parse(parser, argv)
    verdict = promotion_gate(
        state_dir=args.deployment_state_dir, fixtures=args.fixture,
        queue_limit=args.deployment_queue_limit,
        processed_case_cap=args.deployment_processed_case_cap,
        retry_max_attempts=args.deployment_retry_max_attempts,
        retry_base_delay_ms=args.deployment_retry_base_delay_ms,
        stale_after_ms=args.deployment_stale_after_ms,
        skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms,
        evidence_root=args.evidence_dir)
    if args.json:
        print_json(verdict)
    else:
        for step in verdict.steps:
            fields = " ".join(f"{k}={kv(v)}" for k, v in step.monitored.items())
            print(f"gate step {step.index}/{verdict.steps_planned}: verdict={step.verdict} "
                  f"rollout_gate_reasons={kv(step.rollout_gate_reasons)} "
                  f"fixture={step.fixture or '(last cycle)'} {fields}")
            for reason in step.reasons:
                print(f"  reason: {reason}")
        print(f"promotion gate: verdict={verdict.verdict} "
              f"rollout_gate_reasons={kv(verdict.rollout_gate_reasons)} "
              f"steps={len(verdict.steps)}/{verdict.steps_planned} "
              f"evidence={verdict.evidence_dir}")
        print(f"recommendation: {verdict.recommendation}")
    return 0 if verdict.verdict == "pass" else 1


def snapshot_restore(argv: list[str]) -> int:
    """``tau-ops snapshot restore ARCHIVE --deployment-state-dir DIR``: verify, then extract."""
    from tau_ops.ops.restore import restore_snapshot

    parser = _base.sub_parser("snapshot restore",
                              "Verify a snapshot, then restore it into a new or empty dir.")
    parser.add_argument("archive", type=Path, metavar="ARCHIVE")
    parser.add_argument("--deployment-state-dir", type=Path, required=True, metavar="DIR",
                        help="where to restore: a new or empty directory (required; "
                        "TAU_DEPLOYMENT_STATE_DIR is ignored so live state is never the target)")
    parser.add_argument("--manifest", type=Path, help="the sidecar manifest")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = restore_snapshot(args.archive, args.deployment_state_dir, manifest=args.manifest)
    if args.json:
        print_json(report)
    else:
        print(f"snapshot restore: state_dir={report.state_dir} files={report.file_count} "
              f"archive={report.archive_path}")
    return 0


def snapshot(argv: list[str]) -> int:
    """``tau-ops snapshot``: archive the state dir, ``--verify`` an archive, or ``restore`` it."""
    from tau_ops.ops.snapshot import create_snapshot, verify_snapshot

    if argv[:1] == ["restore"]:
        return snapshot_restore(argv[1:])
    parser = _base.sub_parser(
        "snapshot", "Preserve the state dir for incident analysis. 'tau-ops snapshot restore "
        "ARCHIVE --deployment-state-dir DIR' verifies an archive and restores it into a new "
        "or empty DIR (see 'tau-ops snapshot restore --help').")
    _base.state_dir_flag(parser)
    parser.add_argument("--output", type=Path, metavar="ARCHIVE",
                        help="archive path (default beside the state dir)")
    parser.add_argument("--verify", type=Path, metavar="ARCHIVE",
                        help="re-check an archive's hashes instead of creating one "
                        "(default none)")
    parser.add_argument("--manifest", type=Path, metavar="FILE",
                        help="with --verify: the sidecar manifest (default beside the archive)")
    json_flag(parser, "the report")
    args = _base.parse(parser, argv)
    if args.verify is not None:
        checked = verify_snapshot(args.verify, manifest=args.manifest)
        if args.json:
            print_json(checked)
        else:
            print(f"snapshot verify: ok={kv(checked.ok)} files={checked.file_count} "
                  f"archive={checked.archive_path}")
            for problem in checked.problems:
                print(f"  problem: {problem}")
        return 0 if checked.ok else 1
    report = create_snapshot(args.deployment_state_dir, output=args.output)
    if args.json:
        print_json(report)
    else:
        print(f"snapshot: archive={report.archive_path} files={report.file_count} "
              f"sha256={report.archive_sha256} manifest={report.manifest_path}")
    return 0


def runner(argv: list[str]) -> int:
    """``tau-ops runner``: pause, resume or show the switch scheduled runners obey."""
    from tau_ops.ops.pause import pause_runner, pause_status, resume_runner

    parser = _base.sub_parser("runner", "Pause or resume the deployment runner "
                              "(actions: pause, resume, status).")
    parser.add_argument("action", choices=["pause", "resume", "status"],
                        help="pause, resume, or show the pause status")
    _base.state_dir_flag(parser)
    parser.add_argument("--reason", default="", metavar="TEXT",
                        help="with pause: why, recorded in the marker (default empty)")
    json_flag(parser, "the runner status")
    args = _base.parse(parser, argv)
    if args.action == "pause":
        status = pause_runner(args.deployment_state_dir, reason=args.reason)
    elif args.action == "resume":
        status = resume_runner(args.deployment_state_dir)
    else:
        status = pause_status(args.deployment_state_dir)
    if args.json:
        print_json(status)
    else:
        reason = f" reason={status.reason}" if status.reason else ""
        print(f"deployment runner: paused={kv(status.paused)} "
              f"state_dir={status.state_dir}{reason}")
    return 0


def diagnose(argv: list[str]) -> int:
    """``tau-ops diagnose``: list troubleshooting symptoms present, with action and evidence."""
    from tau_ops.ops.diagnosis import diagnose as run

    parser = _base.sub_parser("diagnose", "Map state and events onto the troubleshooting table.")
    _base.state_dir_flag(parser)
    _base.stale_after_flag(parser)
    _base.clock_skew_flag(parser)
    json_flag(parser, "the diagnosis")
    args = _base.parse(parser, argv)
    report = run(args.deployment_state_dir, stale_after_ms=args.deployment_stale_after_ms,
                 skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms)
    if args.json:
        print_json(report)
        return 0
    print(f"diagnosis: health={report.health_state} rollout_gate={report.rollout_gate} "
          f"rollout_gate_reasons={kv(report.rollout_gate_reasons)} "
          f"failure_streak={report.failure_streak} queue_depth={report.queue_depth} "
          f"symptoms={len(report.findings)}")
    for finding in report.findings:
        print(f"- symptom: {finding.symptom} ({shown(finding.detail, limit=400)})")
        print(f"  action: {finding.action}")
        if finding.cycles:
            latest = finding.cycles[-1].timestamp_unix_ms
            stamps = ",".join(str(c.timestamp_unix_ms) for c in finding.cycles[-5:])
            print(f"  cycles: {len(finding.cycles)} (latest {iso_utc(latest)}, "
                  f"{age_text(latest, wall_clock_ms())}; unix ms {stamps})")
        for case in finding.cases[:10]:
            print(f"  case: {shown(case.blueprint_id)}/{shown(case.case_id)} "
                  f"{shown(case.outcome)} {shown(case.status_code)} "
                  f"{shown(case.error_code or '')} {shown(case.reason or '')}".rstrip())
    if not report.findings:
        print("no troubleshooting symptom present")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": demo,
    "gate": gate,
    "snapshot": snapshot,
    "runner": runner,
    "diagnose": diagnose,
}
