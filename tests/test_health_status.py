"""Health classification, the rollout gate, freshness and the status reports (SPEC section 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import fixture, malformed_case, retryable_case, success_case

from tau_ops import (
    FakeClock,
    HealthSnapshot,
    RunnerConfig,
    StateError,
    classify,
    deployment_status,
    parse_fixture,
    run_cycle,
    transport_health,
)
from tau_ops.health import ACTIONS, DEFAULT_STALE_AFTER_MS, freshness, rollout_gate

NOW = 1_700_000_000_000


def cycle(state_dir: Path, *cases: dict, clock: FakeClock | None = None, **config: int) -> None:
    clock = clock or FakeClock(NOW)
    run_cycle(parse_fixture(json.dumps(fixture(*cases))),
              RunnerConfig(state_dir=state_dir, **config), clock=clock, sleeper=clock.sleep)


@pytest.mark.parametrize(
    ("snapshot", "state", "action"),
    [
        (HealthSnapshot(), "healthy", ACTIONS["healthy"]),
        (HealthSnapshot(queue_depth=4), "healthy", ACTIONS["queue_backpressure_applied"]),
        (HealthSnapshot(last_cycle_failed=1, failure_streak=1), "degraded",
         ACTIONS["case_processing_failed"]),
        (HealthSnapshot(last_cycle_malformed=2), "degraded", ACTIONS["malformed_inputs_observed"]),
        (HealthSnapshot(last_cycle_retries=1), "degraded", ACTIONS["retry_attempted"]),
        (HealthSnapshot(failure_streak=2), "degraded", ACTIONS["case_processing_failed"]),
        (HealthSnapshot(failure_streak=3, last_cycle_failed=1), "failing", ACTIONS["failing"]),
    ],
)
def test_classification(snapshot: HealthSnapshot, state: str, action: str) -> None:
    verdict = classify(snapshot)
    assert (verdict.state, verdict.recommendation) == (state, action)
    assert "\n" not in verdict.reason and verdict.reason


def test_gate_passes_only_when_healthy_and_fresh() -> None:
    healthy = HealthSnapshot(updated_unix_ms=NOW)
    fresh = freshness(healthy, now_ms=NOW + 1000)
    assert (fresh.state_age_ms, fresh.stale) == (1000, False)
    assert rollout_gate(classify(healthy), fresh) == "pass"
    stale = freshness(healthy, now_ms=NOW + DEFAULT_STALE_AFTER_MS + 1)
    assert stale.stale and rollout_gate(classify(healthy), stale) == "hold"
    at_limit = freshness(healthy, now_ms=NOW + DEFAULT_STALE_AFTER_MS)
    assert not at_limit.stale
    degraded = HealthSnapshot(updated_unix_ms=NOW, last_cycle_retries=1)
    assert rollout_gate(classify(degraded), fresh) == "hold"


def test_empty_state_dir_holds_the_gate(tmp_path: Path) -> None:
    report = transport_health(tmp_path, now_ms=NOW)
    assert (report.state_exists, report.health_state, report.rollout_gate, report.stale) == (
        False, "healthy", "hold", True)
    assert report.recommendation == ACTIONS["no_cycle"]


def test_transport_health_after_healthy_cycle(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = transport_health(tmp_path, now_ms=NOW + 5)
    assert report.model_dump(include={"health_state", "rollout_gate", "state_age_ms", "stale",
                                      "failure_streak", "last_cycle_completed"}) == {
        "health_state": "healthy", "rollout_gate": "pass", "state_age_ms": 5, "stale": False,
        "failure_streak": 0, "last_cycle_completed": 1}


def test_stale_state_holds_with_demo_action(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = transport_health(tmp_path, now_ms=NOW + 10_000, stale_after_ms=5_000)
    assert (report.rollout_gate, report.stale, report.recommendation) == (
        "hold", True, ACTIONS["stale"])


def test_failing_after_three_failed_cycles_holds(tmp_path: Path) -> None:
    for _ in range(3):
        cycle(tmp_path, retryable_case("r"))
    report = transport_health(tmp_path, now_ms=NOW)
    assert (report.health_state, report.rollout_gate, report.failure_streak) == (
        "failing", "hold", 3)


def test_deployment_status_counts(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a", replicas=3), success_case("w", target="wasm"),
          success_case("c", target="container", environment="production"))
    cycle(tmp_path, success_case("a"),
          malformed_case("m", status=400, error_code="deployment_missing_artifact",
                         reason="missing_container_image", container_image=""))
    with (tmp_path / "runtime-events.jsonl").open("a") as handle:
        handle.write("garbage\n")
    status = deployment_status(tmp_path, now_ms=NOW)
    assert status.model_dump(include={
        "rollout_count", "wasm_rollout_count", "cloud_rollout_count", "total_replicas",
        "deploy_target_counts", "runtime_profile_counts", "environment_counts",
        "outcome_counts", "status_code_counts", "error_code_counts", "cycle_reports",
        "invalid_cycle_reports", "reason_code_counts", "last_reason_codes",
        "processed_case_count", "health_state", "rollout_gate"}) == {
        "rollout_count": 3, "wasm_rollout_count": 1, "cloud_rollout_count": 2,
        "total_replicas": 5,
        "deploy_target_counts": {"container": 1, "kubernetes": 1, "wasm": 1},
        "runtime_profile_counts": {"native": 2, "wasm_wasi": 1},
        "environment_counts": {"production": 1, "staging": 2},
        "outcome_counts": {"success": 3}, "status_code_counts": {"201": 1, "202": 2},
        "error_code_counts": {}, "cycle_reports": 2, "invalid_cycle_reports": 1,
        "reason_code_counts": {"cloud_rollout_applied": 1, "duplicate_cases_skipped": 1,
                               "malformed_inputs_observed": 1, "wasm_rollout_applied": 1},
        "last_reason_codes": ["duplicate_cases_skipped", "malformed_inputs_observed"],
        "processed_case_count": 4, "health_state": "degraded", "rollout_gate": "hold"}


def test_status_reads_rotated_event_files_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "1200")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "10")
    for i in range(6):
        cycle(tmp_path, success_case(f"c{i}"))
    cycle(tmp_path, success_case("c0"))
    status = deployment_status(tmp_path, now_ms=NOW)
    assert status.event_files == 4
    assert status.cycle_reports == 7
    assert status.last_reason_codes == ["duplicate_cases_skipped"]


def test_corrupt_state_is_a_state_error_for_readers(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("[]")
    with pytest.raises(StateError, match="corrupt"):
        deployment_status(tmp_path)
    assert (tmp_path / "state.json").read_text() == "[]"  # readers never move files
