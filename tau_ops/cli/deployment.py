"""Runbook flags of the runner, transport health, deployment status and channel store."""

from __future__ import annotations

import argparse
from pathlib import Path

from tau_ops.channel_store import ChannelInspectReport, inspect_channel
from tau_ops.cli._base import (
    Subcommand,
    fail,
    kv,
    non_negative_int,
    positive_int,
    print_json,
    state_dir_flag,
)
from tau_ops.contract import load_fixture
from tau_ops.health import DEFAULT_STALE_AFTER_MS
from tau_ops.runner import CycleReport, RunnerConfig, run_cycle
from tau_ops.status import (
    DeploymentStatusReport,
    TransportHealthReport,
    deployment_status,
    transport_health,
)

SUBCOMMANDS: dict[str, Subcommand] = {}

SUMMARY_KEYS = (
    ("discovered", "discovered_cases"),
    ("queued", "queued_cases"),
    ("applied", "applied_cases"),
    ("duplicate_skips", "duplicate_skips"),
    ("malformed", "malformed_cases"),
    ("retryable_failures", "retryable_failures"),
    ("retry_attempts", "retry_attempts"),
    ("failed", "failed_cases"),
    ("upserted_rollouts", "upserted_rollouts"),
    ("wasm_rollouts", "wasm_rollouts"),
    ("cloud_rollouts", "cloud_rollouts"),
)


def add_flags(parser: argparse.ArgumentParser) -> None:
    state_dir_flag(parser)
    g = parser.add_argument_group("deployment runner")
    g.add_argument("--deployment-contract-runner", action="store_true",
                   help="run one cycle of the fixture given by --deployment-fixture")
    g.add_argument("--deployment-fixture", type=Path, metavar="FILE")
    g.add_argument("--deployment-queue-limit", type=positive_int, default=64, metavar="N")
    g.add_argument("--deployment-processed-case-cap", type=non_negative_int, default=10_000,
                   metavar="N")
    g.add_argument("--deployment-retry-max-attempts", type=positive_int, default=4, metavar="N")
    g.add_argument("--deployment-retry-base-delay-ms", type=non_negative_int, default=0,
                   metavar="MS")
    g.add_argument("--deployment-runner-json", action="store_true",
                   help="print the cycle report as one JSON document")
    g = parser.add_argument_group("health and status")
    g.add_argument("--transport-health-inspect", metavar="TRANSPORT",
                   help="inspect transport health ('deployment')")
    g.add_argument("--transport-health-json", action="store_true")
    g.add_argument("--deployment-status-inspect", action="store_true")
    g.add_argument("--deployment-status-json", action="store_true")
    g.add_argument("--deployment-stale-after-ms", type=non_negative_int,
                   default=DEFAULT_STALE_AFTER_MS, metavar="MS",
                   help="a last cycle older than this holds the gate (default 24 h)")
    g = parser.add_argument_group("channel store")
    g.add_argument("--channel-store-root", type=Path, metavar="DIR",
                   help="channel store root (default <state dir>/channel-store)")
    g.add_argument("--channel-store-inspect", metavar="deployment/BLUEPRINT_ID")
    g.add_argument("--channel-store-json", action="store_true")


def dispatch(args: argparse.Namespace) -> int | None:
    if args.deployment_contract_runner:
        return _run(args)
    if args.transport_health_inspect is not None:
        if args.transport_health_inspect.strip() != "deployment":
            fail(f"unsupported transport {args.transport_health_inspect!r} "
                 "(--transport-health-inspect takes 'deployment')")
        report = transport_health(args.deployment_state_dir,
                                  stale_after_ms=args.deployment_stale_after_ms)
        if args.transport_health_json:
            print_json(report)
        else:
            print(render_health(report))
        return 0
    if args.deployment_status_inspect:
        status = deployment_status(args.deployment_state_dir,
                                   stale_after_ms=args.deployment_stale_after_ms)
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


def render_health(report: TransportHealthReport) -> str:
    """Text form of transport health."""
    return (
        f"transport health: transport={report.transport} state={report.health_state} "
        f"rollout_gate={report.rollout_gate} failure_streak={report.failure_streak} "
        f"queue_depth={report.queue_depth} last_cycle_failed={report.last_cycle_failed} "
        f"updated_unix_ms={report.updated_unix_ms} state_age_ms={report.state_age_ms} "
        f"stale={kv(report.stale)}\n"
        f"reason: {report.health_reason}\n"
        f"recommendation: {report.recommendation}"
    )


def render_status(status: DeploymentStatusReport) -> str:
    """Text form of deployment status."""
    return "\n".join(
        [
            f"deployment status: state={status.health_state} rollout_gate={status.rollout_gate} "
            f"failure_streak={status.failure_streak} queue_depth={status.queue_depth} "
            f"stale={kv(status.stale)} state_age_ms={status.state_age_ms}",
            f"rollouts: total={status.rollout_count} wasm={status.wasm_rollout_count} "
            f"cloud={status.cloud_rollout_count} replicas={status.total_replicas} "
            f"processed_case_keys={status.processed_case_count} "
            f"wasm_deliverables={status.wasm_deliverable_count}",
            f"targets: {kv(status.deploy_target_counts)} runtimes: "
            f"{kv(status.runtime_profile_counts)} environments: {kv(status.environment_counts)}",
            f"outcomes: {kv(status.outcome_counts)} status_codes: "
            f"{kv(status.status_code_counts)} error_codes: {kv(status.error_code_counts)}",
            f"cycles: reports={status.cycle_reports} invalid={status.invalid_cycle_reports} "
            f"files={status.event_files} last_reason_codes={kv(status.last_reason_codes)}",
            f"reason_code_counts: {kv(status.reason_code_counts)}",
            f"reason: {status.health_reason}",
            f"recommendation: {status.recommendation}",
        ]
    )
