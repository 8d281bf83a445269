"""Runbook flags of the runner, transport health, deployment status and channel store."""

from __future__ import annotations

import argparse
from pathlib import Path

from tau_ops.channel_store import ChannelInspectReport, inspect_channel
from tau_ops.cli._base import (
    Subcommand,
    clock_skew_flag,
    fail,
    kv,
    print_json,
    runner_flags,
    stale_after_flag,
    state_dir_flag,
)
from tau_ops.contract import load_fixture
from tau_ops.runner import CycleReport, RunnerConfig, run_cycle
from tau_ops.status import (
    DeploymentStatusReport,
    TransportHealthReport,
    deployment_status,
    transport_health,
)
from tau_ops.timefmt import age_text

SUBCOMMANDS: dict[str, Subcommand] = {}

SUMMARY_KEYS = (
    ("discovered", "discovered_cases"),
    ("queued", "queued_cases"),
    ("applied", "applied_cases"),
    ("duplicate_skips", "duplicate_skips"),
    ("malformed", "malformed_cases"),
    ("retryable_failures", "retryable_failures"),
    ("retries", "retry_attempts"),
    ("failed", "failed_cases"),
    ("upserted_rollouts", "upserted_rollouts"),
    ("wasm_rollouts", "wasm_rollouts"),
    ("cloud_rollouts", "cloud_rollouts"),
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    state_dir_flag(parser)
    g = parser.add_argument_group("deployment runner")
    g.add_argument("--deployment-contract-runner", action="store_true",
                   help="run one cycle of the fixture given by --deployment-fixture "
                   "(default false)")
    g.add_argument("--deployment-fixture", type=Path, metavar="FILE",
                   help="deployment contract fixture (JSON) the runner reads "
                   "(default none: required with --deployment-contract-runner)")
    runner_flags(g)
    g.add_argument("--deployment-runner-json", action="store_true",
                   help="print the cycle report as one JSON document (default false: text)")
    g = parser.add_argument_group("health and status")
    g.add_argument("--transport-health-inspect", metavar="TRANSPORT",
                   help="inspect transport health; the one transport is 'deployment' "
                   "(default none)")
    g.add_argument("--transport-health-json", action="store_true",
                   help="print transport health as one JSON document (default false: text)")
    g.add_argument("--deployment-status-inspect", action="store_true",
                   help="print the deployment status report (default false)")
    g.add_argument("--deployment-status-json", action="store_true",
                   help="print deployment status as one JSON document (default false: text)")
    stale_after_flag(g)
    clock_skew_flag(g)
    g = parser.add_argument_group("channel store")
    g.add_argument("--channel-store-root", type=Path, metavar="DIR",
                   help="channel store root (default <state dir>/channel-store)")
    g.add_argument("--channel-store-inspect", metavar="deployment/BLUEPRINT_ID",
                   help="count the log, context and memory of one channel; a channel with "
                   "no directory reports exists=false, exit 0 (default none)")
    g.add_argument("--channel-store-json", action="store_true",
                   help="print the channel report as one JSON document (default false: text)")


def dispatch(args: argparse.Namespace) -> int | None:
    if args.deployment_contract_runner:
        return _run(args)
    if args.transport_health_inspect is not None:
        if args.transport_health_inspect.strip() != "deployment":
            fail(f"unsupported transport {args.transport_health_inspect!r} "
                 "(--transport-health-inspect takes 'deployment')")
        report = transport_health(
            args.deployment_state_dir, stale_after_ms=args.deployment_stale_after_ms,
            skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms)
        if args.transport_health_json:
            print_json([report.model_dump(mode="json")])  # the seed prints a list of rows
        else:
            print(render_health(report))
        return 0
    if args.deployment_status_inspect:
        status = deployment_status(
            args.deployment_state_dir, stale_after_ms=args.deployment_stale_after_ms,
            skew_tolerance_ms=args.deployment_clock_skew_tolerance_ms)
        if args.deployment_status_json:
            print_json(status)
        else:
            print(render_status(status))
        return 0
    if args.channel_store_inspect is not None:
        root = args.channel_store_root or args.deployment_state_dir / "channel-store"
        channel = inspect_channel(root, args.channel_store_inspect)
        if args.channel_store_json:
            print_json(channel)
        else:
            print(render_channel(channel))
        return 0
    return None


def _run(args: argparse.Namespace) -> int:
    if args.deployment_fixture is None:
        fail("--deployment-contract-runner needs --deployment-fixture FILE")
    fixture = load_fixture(args.deployment_fixture)
    config = RunnerConfig(
        state_dir=args.deployment_state_dir,
        queue_limit=args.deployment_queue_limit,
        processed_case_cap=args.deployment_processed_case_cap,
        retry_max_attempts=args.deployment_retry_max_attempts,
        retry_base_delay_ms=args.deployment_retry_base_delay_ms,
    )
    report = run_cycle(fixture, config)
    if args.deployment_runner_json:
        print_json(report)
    else:
        print(render_cycle(report))
    return 0


def render_channel(channel: ChannelInspectReport) -> str:
    """Text form of a channel store inspection: the seed's line first, then tau-ops's."""
    seed = (
        f"channel store inspect: transport={channel.transport} "
        f"channel_id={channel.channel_id} dir={channel.channel_dir} "
        f"log_records={channel.log_records} context_records={channel.context_records} "
        f"invalid_log_lines={channel.invalid_log_lines} "
        f"invalid_context_lines={channel.invalid_context_lines} "
        f"artifact_records={channel.artifact_records} "
        f"invalid_artifact_lines={channel.invalid_artifact_lines} "
        f"active_artifacts={channel.active_artifacts} "
        f"expired_artifacts={channel.expired_artifacts} "
        f"memory_exists={kv(channel.memory_exists)} memory_bytes={channel.memory_bytes}"
    )
    last_ts = channel.last_timestamp_unix_ms
    extra = (
        f"channel store detail: channel={channel.channel} exists={kv(channel.exists)} "
        f"layout={channel.layout} last_event_key={channel.last_event_key or '-'} "
        f"last_timestamp_unix_ms={'-' if last_ts is None else last_ts}"
    )
    return f"{seed}\n{extra}"


def render_cycle(report: CycleReport) -> str:
    """The runner's two lines: summary counters, then health."""
    summary = " ".join(f"{short}={getattr(report, name)}" for short, name in SUMMARY_KEYS)
    return (
        f"deployment runner summary: {summary} reason_codes={kv(report.reason_codes)}\n"
        f"deployment runner health: state={report.health_state} "
        f"failure_streak={report.failure_streak} queue_depth={report.queue_depth} "
        f"reason={report.health_reason}"
    )


def _updated_line(report: TransportHealthReport | DeploymentStatusReport) -> str:
    if report.updated_utc is None:
        return "updated: never (no deployment cycle recorded yet)"
    return (f"updated: {report.updated_utc}, "
            f"{age_text(report.updated_unix_ms, report.judged_unix_ms)} "
            f"(updated_unix_ms={report.updated_unix_ms} state_age_ms={report.state_age_ms} "
            f"stale_after_ms={report.stale_after_ms})")


def _verdict_lines(report: TransportHealthReport | DeploymentStatusReport) -> list[str]:
    lines = [
        f"rollout gate: rollout_gate={report.rollout_gate} "
        f"rollout_gate_reasons={kv(report.rollout_gate_reasons)} "
        f"health_state={report.health_state} stale={kv(report.stale)} "
        f"runner_paused={kv(report.runner_paused)}",
        _updated_line(report),
    ]
    pause = report.pause
    if pause is not None:
        when = "unknown time"
        if pause.paused_unix_ms is not None:
            when = (f"{pause.paused_utc}, {age_text(pause.paused_unix_ms, report.judged_unix_ms)}"
                    f" (paused_unix_ms={pause.paused_unix_ms})")
        lines.append(f"paused: by={pause.paused_by or 'unknown'} at={when} "
                     f"reason={pause.reason or 'none given'}")
    lines += [f"reason: {report.rollout_gate_reason}",
              f"recommendation: {report.recommendation}"]
    return lines


def render_health(report: TransportHealthReport) -> str:
    """Text form of transport health: the seed's row line, then the gate and its reasons."""
    h = report.health
    seed = (
        f"transport health inspect: transport={report.transport} target={report.target} "
        f"state_path={report.state_path} updated_unix_ms={h.updated_unix_ms} "
        f"cycle_duration_ms={h.cycle_duration_ms} queue_depth={h.queue_depth} "
        f"active_runs={h.active_runs} failure_streak={h.failure_streak} "
        f"last_cycle_discovered={h.last_cycle_discovered} "
        f"last_cycle_processed={h.last_cycle_processed} "
        f"last_cycle_completed={h.last_cycle_completed} last_cycle_failed={h.last_cycle_failed} "
        f"last_cycle_duplicates={h.last_cycle_duplicates}"
    )
    return "\n".join([seed, *_verdict_lines(report)])


def render_status(status: DeploymentStatusReport) -> str:
    """Text form of deployment status: the seed's line, then tau-ops's lines."""
    seed = (
        f"deployment status inspect: state_path={status.state_path} "
        f"events_log_path={status.events_log_path} "
        f"events_log_present={kv(status.events_log_present)} "
        f"health_state={status.health_state} health_reason={status.health_reason} "
        f"rollout_gate={status.rollout_gate} "
        f"processed_case_count={status.processed_case_count} "
        f"rollout_count={status.rollout_count} target_counts={kv(status.target_counts)} "
        f"runtime_profile_counts={kv(status.runtime_profile_counts)} "
        f"environment_counts={kv(status.environment_counts)} "
        f"outcome_counts={kv(status.outcome_counts)} "
        f"status_code_counts={kv(status.status_code_counts)} "
        f"error_code_counts={kv(status.error_code_counts)} "
        f"total_replicas={status.total_replicas} "
        f"wasm_rollout_count={status.wasm_rollout_count} "
        f"cloud_rollout_count={status.cloud_rollout_count} "
        f"cycle_reports={status.cycle_reports} "
        f"invalid_cycle_reports={status.invalid_cycle_reports} "
        f"last_reason_codes={kv(status.last_reason_codes)} "
        f"reason_code_counts={kv(status.reason_code_counts)} "
        f"queue_depth={status.health.queue_depth} failure_streak={status.health.failure_streak} "
        f"last_cycle_failed={status.health.last_cycle_failed} "
        f"last_cycle_completed={status.health.last_cycle_completed}"
    )
    extra = (f"deployment extras: wasm_deliverable_count={status.wasm_deliverable_count} "
             f"event_files={status.event_files}")
    return "\n".join([seed, *_verdict_lines(status), extra])
