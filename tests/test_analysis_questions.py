"""Incident questions answered exactly on event logs with known contents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from builders import event_line, write_event_log

from tau_ops.analysis import (
    backlog_trend,
    health_shares,
    health_timeline,
    incidents,
    load_events,
    reason_code_trends,
    scan_events,
    summary,
    troubleshooting_action,
)
from tau_ops.analysis.questions import NO_HISTORY_ACTION
from tau_ops.errors import UsageError
from tau_ops.health import ACTIONS

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
MIN = 60_000
START = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
H22 = datetime(2023, 11, 14, 22, tzinfo=UTC)
H23 = datetime(2023, 11, 14, 23, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture
def events(tmp_path: Path) -> pl.DataFrame:
    """healthy, then an incident (retries, then failures), healthy, a one-cycle blip."""
    write_event_log(
        tmp_path / "runtime-events.jsonl",
        event_line(T0, reason_codes=["cloud_rollout_applied"]),
        event_line(T0 + 10 * MIN, "degraded", ["queue_backpressure_applied", "retry_attempted"],
                   retry_attempts=2, backlog_cases=4),
        event_line(T0 + 20 * MIN, "degraded", ["retry_attempted", "case_processing_failed"],
                   failed_cases=1, failure_streak=1, backlog_cases=6),
        event_line(T0 + 30 * MIN, "failing", ["retry_attempted", "case_processing_failed"],
                   failed_cases=1, failure_streak=3, backlog_cases=2),
        event_line(T0 + 50 * MIN, reason_codes=["cloud_rollout_applied"]),
        event_line(T0 + 60 * MIN, "degraded", ["malformed_inputs_observed"], malformed_cases=1),
    )
    return load_events(tmp_path)


def test_reason_code_trends_count_cycles_per_code_and_bucket(events: pl.DataFrame) -> None:
    trends = reason_code_trends(events, every="1h")
    assert trends.columns == ["bucket", "reason_code", "cycles"]
    assert trends.rows() == [
        (H22, "queue_backpressure_applied", 1),
        (H22, "retry_attempted", 3),
        (H22, "case_processing_failed", 2),
        (H22, "cloud_rollout_applied", 1),
        (H23, "malformed_inputs_observed", 1),
        (H23, "cloud_rollout_applied", 1),
    ]


def test_lazy_frames_give_the_same_answers(tmp_path: Path, events: pl.DataFrame) -> None:
    lazy = scan_events(tmp_path)
    assert isinstance(reason_code_trends(lazy), pl.LazyFrame)
    assert reason_code_trends(lazy).collect().equals(reason_code_trends(events))
    assert incidents(lazy).collect().equals(incidents(events))
    assert backlog_trend(lazy).collect().equals(backlog_trend(events))


def test_incidents_are_maximal_non_healthy_runs(events: pl.DataFrame) -> None:
    found = incidents(events)
    assert found.columns == ["start", "end", "duration", "cycles", "worst_state",
                             "peak_failure_streak", "dominant_reason_codes", "action"]
    assert found.rows() == [
        (_at(10), _at(30), timedelta(minutes=20), 3, "failing", 3,
         ["retry_attempted", "case_processing_failed", "queue_backpressure_applied"],
         ACTIONS["failing"]),
        (_at(60), _at(60), timedelta(0), 1, "degraded", 0, ["malformed_inputs_observed"],
         ACTIONS["malformed_inputs_observed"]),
    ]


def test_health_timeline_gives_state_per_cycle_and_bucket_shares(events: pl.DataFrame) -> None:
    timeline = health_timeline(events, every="1h")
    assert timeline.select("timestamp", "health_state", "bucket", "bucket_cycles",
                           "failing_share").rows() == [
        (_at(0), "healthy", H22, 4, 0.25),
        (_at(10), "degraded", H22, 4, 0.25),
        (_at(20), "degraded", H22, 4, 0.25),
        (_at(30), "failing", H22, 4, 0.25),
        (_at(50), "healthy", H23, 2, 0.0),
        (_at(60), "degraded", H23, 2, 0.0),
    ]
    assert timeline.select("healthy_share", "degraded_share").row(0) == (0.25, 0.5)
    assert health_shares(events, every="1h").rows() == [
        (H22, "healthy", 1, 0.25), (H22, "degraded", 2, 0.5), (H22, "failing", 1, 0.25),
        (H23, "healthy", 1, 0.5), (H23, "degraded", 1, 0.5),
    ]


def test_backlog_trend_shows_growth_per_bucket(events: pl.DataFrame) -> None:
    assert backlog_trend(events, every="30m").rows() == [
        (datetime(2023, 11, 14, 22, 0, tzinfo=UTC), 2, 4, 4, 2.0, 0),
        (datetime(2023, 11, 14, 22, 30, tzinfo=UTC), 2, 2, 6, 4.0, -2),
        (datetime(2023, 11, 14, 23, 0, tzinfo=UTC), 2, 0, 0, 0.0, -2),
    ]


def test_summary_names_the_posture_in_one_line(events: pl.DataFrame) -> None:
    posture = summary(events)
    assert posture.model_dump() == {
        "cycles": 6, "first": _at(0), "last": _at(60), "health_state": "degraded",
        "failure_streak": 0, "backlog_cases": 0, "healthy_cycles": 2, "degraded_cycles": 3,
        "failing_cycles": 1, "incidents": 2, "non_healthy_since": _at(60),
        "top_reason_codes": ["retry_attempted", "case_processing_failed",
                             "queue_backpressure_applied", "malformed_inputs_observed"],
        "action": ACTIONS["malformed_inputs_observed"], "by_source": {},
    }
    assert posture.line == (
        "degraded since 2023-11-14 23:13:20 UTC: 6 cycles 2023-11-14 22:13 .. "
        "2023-11-14 23:13 UTC, healthy=2 degraded=3 failing=1, incidents=2, failure_streak=0 "
        "backlog=0, top problem codes: retry_attempted,case_processing_failed,"
        "queue_backpressure_applied,malformed_inputs_observed"
    )


def test_tied_codes_are_all_kept_and_duplicates_are_not_a_problem(tmp_path: Path) -> None:
    write_event_log(
        tmp_path / "runtime-events.jsonl",
        *[event_line(T0 + i * 60_000, "degraded", [code, "duplicate_cases_skipped"])
          for i, code in enumerate(["retry_attempted", "malformed_inputs_observed",
                                    "case_processing_failed", "retryable_failures_observed"])])
    posture = summary(load_events(tmp_path))
    assert posture.top_reason_codes == [
        "malformed_inputs_observed", "retry_attempted", "retryable_failures_observed",
        "case_processing_failed"]
    assert posture.line.split(": 4 cycles ")[0] == "degraded since 2023-11-14 22:13:20 UTC"


def test_one_cycle_is_not_plural(tmp_path: Path) -> None:
    write_event_log(tmp_path / "runtime-events.jsonl", event_line(T0))
    assert ": 1 cycle 2023-11-14 22:13 .. " in summary(load_events(tmp_path)).line


def test_empty_log_answers_are_empty(tmp_path: Path) -> None:
    empty = load_events(tmp_path)
    assert reason_code_trends(empty).height == 0
    assert incidents(empty).height == 0
    assert backlog_trend(empty).height == 0
    assert health_timeline(empty).height == 0
    assert summary(empty).line == "no cycles recorded"
    assert summary(empty).action == ACTIONS["no_cycle"]


def test_one_cycle_log(tmp_path: Path) -> None:
    write_event_log(tmp_path / "runtime-events.jsonl",
                    event_line(T0, "degraded", ["retry_attempted"], retry_attempts=1))
    one = load_events(tmp_path)
    assert reason_code_trends(one).rows() == [(H22, "retry_attempted", 1)]
    assert incidents(one).select("start", "end", "cycles", "worst_state").rows() == [
        (START, START, 1, "degraded")]
    assert summary(one).non_healthy_since == START
    assert summary(one).action == ACTIONS["retry_attempted"]


def test_a_code_listed_twice_in_a_cycle_counts_that_cycle_once(tmp_path: Path) -> None:
    write_event_log(
        tmp_path / "runtime-events.jsonl",
        event_line(T0, "degraded", ["retry_attempted", "retry_attempted"]),
        event_line(T0 + MIN, "degraded", ["retry_attempted", "retry_attempted"]),
        event_line(T0 + 2 * MIN, "degraded", ["retry_attempted", "case_processing_failed"]),
        event_line(T0 + 3 * MIN),
    )
    events = load_events(tmp_path)
    expected = [(H22, "retry_attempted", 3), (H22, "case_processing_failed", 1),
                (H22, "healthy_cycle", 1)]
    assert reason_code_trends(events).rows() == expected
    assert reason_code_trends(events.lazy()).collect().rows() == expected


def test_incidents_and_summary_count_a_twice_listed_code_once_per_cycle(tmp_path: Path) -> None:
    write_event_log(
        tmp_path / "runtime-events.jsonl",
        event_line(T0, "degraded", ["retry_attempted"] * 3),
        event_line(T0 + MIN, "degraded", ["case_processing_failed"]),
        event_line(T0 + 2 * MIN, "degraded", ["case_processing_failed"]),
    )
    events = load_events(tmp_path)
    assert incidents(events).get_column("dominant_reason_codes").to_list() == [
        ["case_processing_failed", "retry_attempted"]]
    assert summary(events).top_reason_codes == ["case_processing_failed", "retry_attempted"]


def test_exported_string_codes_rank_as_loaded_enum_codes(tmp_path: Path) -> None:
    # one cycle, two codes: a tie, broken in the contract's order (retry_attempted first)
    write_event_log(tmp_path / "runtime-events.jsonl",
                    event_line(T0, "degraded", ["case_processing_failed", "retry_attempted"]))
    events = load_events(tmp_path)
    as_strings = events.with_columns(pl.col("reason_codes").cast(pl.List(pl.String)),
                                     pl.col("health_state").cast(pl.String))
    expected = [["retry_attempted", "case_processing_failed"]]
    assert incidents(events).get_column("dominant_reason_codes").to_list() == expected
    assert incidents(as_strings).get_column("dominant_reason_codes").to_list() == expected
    assert summary(as_strings).top_reason_codes == summary(events).top_reason_codes == [
        "retry_attempted", "case_processing_failed"]


def test_fleet_answers_are_split_per_source(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_event_log(a / "runtime-events.jsonl", event_line(T0, "degraded", ["retry_attempted"]))
    write_event_log(b / "runtime-events.jsonl", event_line(T0 + MIN, "degraded",
                    ["retry_attempted"]), event_line(T0 + 2 * MIN))
    fleet = load_events([a, b])
    assert reason_code_trends(fleet).rows() == [
        (H22, str(a), "retry_attempted", 1), (H22, str(b), "retry_attempted", 1),
        (H22, str(b), "healthy_cycle", 1),
    ]
    assert incidents(fleet).select("source", "start", "cycles").rows() == [
        (str(a), START, 1), (str(b), _at(1), 1)]


def test_bad_bucket_width_is_a_usage_error(events: pl.DataFrame) -> None:
    with pytest.raises(UsageError, match="bucket width"):
        reason_code_trends(events, every="hourly")


def test_troubleshooting_actions_come_from_the_runbook() -> None:
    assert troubleshooting_action("queue_backpressure_applied") == \
        ACTIONS["queue_backpressure_applied"]
    assert troubleshooting_action("cloud_rollout_applied") == NO_HISTORY_ACTION
    assert "promotion can continue" not in NO_HISTORY_ACTION
