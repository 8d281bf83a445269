"""Loading runtime events, rollouts, deliverables and channel logs into polars frames."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from builders import event_line, retryable_case, success_case, write_event_log

from tau_ops.analysis import (
    EVENT_SCHEMA,
    load_channel_log,
    load_events,
    load_rollouts,
    load_wasm_deliverables,
    read_events,
    scan_events,
)
from tau_ops.clock import FakeClock
from tau_ops.contract import parse_fixture
from tau_ops.errors import InputError
from tau_ops.runner import RunnerConfig, run_cycle

T0 = 1_700_000_000_000


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_rotated_backups_are_read_oldest_first_then_active(tmp_path: Path) -> None:
    write_event_log(tmp_path / "runtime-events.jsonl.2", event_line(T0))
    write_event_log(tmp_path / "runtime-events.jsonl.1", event_line(T0 + 1000, "degraded",
                    ["retry_attempted"], retry_attempts=2))
    write_event_log(tmp_path / "runtime-events.jsonl", event_line(T0 + 2000, "failing",
                    ["case_processing_failed"], failed_cases=1, failure_streak=3))
    frame = load_events(tmp_path, cache=False)
    assert frame.schema == pl.Schema(EVENT_SCHEMA)
    assert frame.select("timestamp", "health_state", "reason_codes", "retry_attempts",
                        "failed_cases", "failure_streak").rows() == [
        (_ts(T0), "healthy", ["healthy_cycle"], 0, 0, 0),
        (_ts(T0 + 1000), "degraded", ["retry_attempted"], 2, 0, 0),
        (_ts(T0 + 2000), "failing", ["case_processing_failed"], 0, 1, 3),
    ]


def test_invalid_lines_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = write_event_log(
        tmp_path / "runtime-events.jsonl",
        event_line(T0),
        "not json",
        "42",
        '{"timestamp_unix_ms":"soon","health_state":"healthy","reason_codes":[]}',
        '{"timestamp_unix_ms":1,"health_state":"bogus","reason_codes":[]}',
        '{"timestamp_unix_ms":1,"health_state":"healthy","reason_codes":["made_up"]}',
        "",
        event_line(T0 + 1000),
    )
    with open(log, "a") as handle:
        handle.write('{"timestamp_unix_ms":9,"health_st')  # torn last line
    with caplog.at_level(logging.WARNING, logger="tau_ops"):
        result = read_events(tmp_path, cache=False)
    assert result.invalid_lines == 6
    assert result.frame.get_column("timestamp").to_list() == [_ts(T0), _ts(T0 + 1000)]
    assert f"skipped 6 invalid line(s) in {log}" in caplog.messages


def test_missing_counters_read_as_zero(tmp_path: Path) -> None:
    write_event_log(tmp_path / "runtime-events.jsonl",
                    '{"timestamp_unix_ms":5,"health_state":"healthy","reason_codes":[]}')
    row = load_events(tmp_path, cache=False).row(0, named=True)
    assert row["discovered_cases"] == 0 and row["cycle_duration_ms"] == 0
    assert row["health_reason"] is None and row["reason_codes"] == []


def test_empty_and_missing_logs_give_an_empty_typed_frame(tmp_path: Path) -> None:
    assert load_events(tmp_path).schema == pl.Schema(EVENT_SCHEMA)
    assert load_events(tmp_path).height == 0
    write_event_log(tmp_path / "runtime-events.jsonl")
    assert load_events(tmp_path).height == 0
    assert scan_events(tmp_path).collect().height == 0


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such state dir or events file"):
        load_events(tmp_path / "nope" / "deeper")


def test_several_state_dirs_get_a_source_column(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_event_log(a / "runtime-events.jsonl", event_line(T0), event_line(T0 + 10))
    write_event_log(b / "runtime-events.jsonl", event_line(T0 + 5, "degraded",
                    ["malformed_inputs_observed"], malformed_cases=1))
    frame = load_events([a, str(b)])
    assert frame.columns == [*EVENT_SCHEMA, "source"]
    assert frame.select("source", "timestamp", "health_state").rows() == [
        (str(a), _ts(T0), "healthy"),
        (str(a), _ts(T0 + 10), "healthy"),
        (str(b), _ts(T0 + 5), "degraded"),
    ]
    assert scan_events([a, b]).collect().equals(frame)


def test_an_events_file_can_be_given_directly(tmp_path: Path) -> None:
    path = write_event_log(tmp_path / "copy.jsonl", event_line(T0), event_line(T0 + 1))
    assert load_events(path).height == 2


def test_scan_events_projects_and_matches_load_events(tmp_path: Path) -> None:
    write_event_log(tmp_path / "runtime-events.jsonl.1", event_line(T0), "garbage")
    write_event_log(tmp_path / "runtime-events.jsonl", event_line(T0 + 1, "degraded",
                    ["retry_attempted"], retry_attempts=1))
    lazy = scan_events(tmp_path, cache=False)
    assert lazy.collect().equals(load_events(tmp_path, cache=False))
    assert lazy.select("timestamp").collect().get_column("timestamp").to_list() == [
        _ts(T0), _ts(T0 + 1)]
    assert lazy.filter(pl.col("health_state") == "degraded").select("retry_attempts") \
        .collect().item() == 1


def test_real_cycles_load_with_rollouts_and_channel_log(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    clock = FakeClock(T0)
    fixture = parse_fixture(json.dumps({
        "schema_version": 1, "name": "f",
        "cases": [success_case("c1"), retryable_case("c2", blueprint_id="edge")],
    }).encode())
    run_cycle(fixture, RunnerConfig(state_dir=state_dir), clock=clock, sleeper=clock.sleep)
    events = load_events(state_dir)
    assert events.select("timestamp", "health_state", "applied_cases", "failed_cases",
                         "retry_attempts").rows() == [(_ts(T0), "degraded", 1, 1, 3)]
    assert events.get_column("reason_codes").to_list() == [[
        "retry_attempted", "retryable_failures_observed", "case_processing_failed",
        "cloud_rollout_applied"]]
    rollouts = load_rollouts(state_dir)
    assert rollouts.select("case_id", "blueprint_id", "outcome", "status_code", "updated").rows() \
        == [("c1", "cloud-api", "success", 202, _ts(T0))]
    channel = load_channel_log(state_dir)
    assert channel.select("blueprint_id", "case_id", "outcome", "status_code",
                          "error_code").rows() == [
        ("cloud-api", "c1", "success", 202, None),
        ("edge", "c2", "retryable_failure", 503, "deployment_backend_unavailable"),
    ]
    assert load_channel_log(state_dir, "edge").get_column("case_id").to_list() == ["c2"]
    assert load_wasm_deliverables(state_dir).height == 0


def test_state_loaders_on_an_empty_state_dir(tmp_path: Path) -> None:
    assert load_rollouts(tmp_path).height == 0
    assert load_channel_log(tmp_path).height == 0
    assert load_wasm_deliverables(tmp_path).columns == ["blueprint_id", "artifact_sha256"]


@pytest.mark.parametrize("kind", ["fifo", "device link"])
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_fifo_or_device_among_the_event_files_is_refused_not_read(
        tmp_path: Path, kind: str, command: str) -> None:
    import os

    from builders import run_cli

    state = tmp_path / "s"
    write_event_log(state / "runtime-events.jsonl", event_line(1_790_000_000_000))
    odd = state / "runtime-events.jsonl.1"
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    argv = (["report", "--deployment-state-dir", state, "--output", tmp_path / "r"]
            if command == "report" else ["export", "events", state, "--to", tmp_path / "x"])
    result = run_cli(*argv, timeout=60)
    described = "FIFO" if kind == "fifo" else "character device"
    assert (result.returncode, result.stderr) == (
        2, f"error: cannot read {odd}: it is a {described}, not a regular file\n")
    with pytest.raises(InputError):
        load_events(state)
