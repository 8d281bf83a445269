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
from tau_ops.health import (
    ACTIONS,
    DEFAULT_STALE_AFTER_MS,
    PauseMarker,
    gate_decision,
    snapshot_problems,
)

NOW = 1_700_000_000_000


def cycle(state_dir: Path, *cases: dict, clock: FakeClock | None = None, **config: int) -> None:
    clock = clock or FakeClock(NOW)
    run_cycle(parse_fixture(json.dumps(fixture(*cases))),
              RunnerConfig(state_dir=state_dir, **config), clock=clock, sleeper=clock.sleep)


def snap(**fields: int) -> HealthSnapshot:
    """A snapshot a runner could have written: one clean case unless ``fields`` say otherwise."""
    values = {"updated_unix_ms": NOW, "last_cycle_discovered": 1, "last_cycle_processed": 1,
              "last_cycle_completed": 1, **fields}
    return HealthSnapshot(**values)


@pytest.mark.parametrize(
    ("snapshot", "state", "action"),
    [
        (HealthSnapshot(), "healthy", ACTIONS["no_cycle"]),
        (snap(), "healthy", ACTIONS["healthy"]),
        (snap(queue_depth=4, last_cycle_discovered=5), "healthy",
         ACTIONS["queue_backpressure_applied"]),
        (snap(last_cycle_failed=1, failure_streak=1, last_cycle_completed=0), "degraded",
         ACTIONS["case_processing_failed"]),
        (snap(last_cycle_malformed=1), "degraded", ACTIONS["malformed_inputs_observed"]),
        (snap(last_cycle_retries=1), "degraded", ACTIONS["retry_attempted"]),
        (snap(failure_streak=2), "degraded", ACTIONS["case_processing_failed"]),
        (snap(failure_streak=3, last_cycle_failed=1, last_cycle_completed=0), "failing",
         ACTIONS["failing"]),
    ],
)
def test_classification(snapshot: HealthSnapshot, state: str, action: str) -> None:
    verdict = classify(snapshot)
    assert (verdict.state, verdict.recommendation) == (state, action)
    assert "\n" not in verdict.reason and verdict.reason


def test_gate_passes_only_when_healthy_and_fresh() -> None:
    def judged(snapshot: HealthSnapshot, now: int) -> tuple[str, list[str], int, bool]:
        d = gate_decision(snapshot, now_ms=now)
        return d.rollout_gate, d.rollout_gate_reasons, d.state_age_ms, d.stale

    assert judged(snap(), NOW + 1000) == ("pass", [], 1000, False)
    assert judged(snap(), NOW + DEFAULT_STALE_AFTER_MS) == ("pass", [], DEFAULT_STALE_AFTER_MS,
                                                           False)
    assert judged(snap(), NOW + DEFAULT_STALE_AFTER_MS + 1) == (
        "hold", ["stale_state"], DEFAULT_STALE_AFTER_MS + 1, True)
    assert judged(snap(last_cycle_retries=1), NOW) == ("hold", ["health_degraded"], 0, False)


def test_every_gate_reason_in_its_order_with_the_first_reasons_action() -> None:
    failing = snap(failure_streak=3, last_cycle_failed=1, last_cycle_completed=0)
    old = gate_decision(failing, now_ms=NOW + 10 * DEFAULT_STALE_AFTER_MS,
                        pause=PauseMarker(NOW, "ops", "freeze"))
    assert (old.rollout_gate, old.rollout_gate_reasons, old.recommendation) == (
        "hold", ["runner_paused", "stale_state", "health_failing"], ACTIONS["runner_paused"])
    assert old.reason == (
        "runner paused by ops at 2023-11-14T22:13:20Z, 10 days ago: freeze; "
        "state is stale: last cycle at 2023-11-14T22:13:20Z, 10 days ago (limit 1 day); "
        "health is failing: failure_streak=3 reached the failing threshold "
        "(3 consecutive cycles with failed cases)")
    assert gate_decision(None, now_ms=NOW).rollout_gate_reasons == ["no_cycle"]
    bad = gate_decision(snap(failure_streak=-3, last_cycle_failed=-1), now_ms=NOW,
                        pause=PauseMarker())
    assert (bad.rollout_gate_reasons, bad.recommendation, bad.invalid_problems) == (
        ["invalid_state", "runner_paused"], ACTIONS["invalid_state"],
        ["failure_streak=-3 is negative", "last_cycle_failed=-1 is negative"])


def test_state_from_the_future_holds_beyond_the_skew_tolerance() -> None:
    year = 365 * DEFAULT_STALE_AFTER_MS
    ahead = gate_decision(snap(updated_unix_ms=NOW + year), now_ms=NOW)
    assert (ahead.rollout_gate, ahead.rollout_gate_reasons, ahead.state_age_ms, ahead.stale,
            ahead.clock_skew_ms, ahead.recommendation) == (
        "hold", ["clock_skew"], 0, False, year, ACTIONS["clock_skew"])
    within = gate_decision(snap(updated_unix_ms=NOW + 60_000), now_ms=NOW)
    assert (within.rollout_gate, within.rollout_gate_reasons) == ("pass", [])
    tight = gate_decision(snap(updated_unix_ms=NOW + 60_000), now_ms=NOW, skew_tolerance_ms=0)
    assert tight.rollout_gate_reasons == ["clock_skew"]


@pytest.mark.parametrize(
    ("snapshot", "problems"),
    [
        (snap(), []),
        (snap(failure_streak=-3, last_cycle_failed=-1),
         ["failure_streak=-3 is negative", "last_cycle_failed=-1 is negative"]),
        (snap(last_cycle_processed=2),
         ["last_cycle_processed=2 is not completed + failed + duplicates (1 + 0 + 0)",
          "last_cycle_discovered=1 is not processed + queue_depth (2 + 0)"]),
        (snap(last_cycle_malformed=2), ["last_cycle_malformed=2 exceeds last_cycle_completed=1"]),
        (snap(last_cycle_failed=1, last_cycle_completed=0),
         ["failure_streak=0 does not match last_cycle_failed=1"]),
        (HealthSnapshot(failure_streak=1), ["counters are set but updated_unix_ms=0 (no cycle)"]),
        (snap(updated_unix_ms=253_402_300_800_000),
         ["updated_unix_ms=253402300800000 is past year 9999"]),
    ],
)
def test_impossible_snapshots_are_named(snapshot: HealthSnapshot, problems: list[str]) -> None:
    assert snapshot_problems(snapshot) == problems


def test_empty_state_dir_holds_the_gate(tmp_path: Path) -> None:
    report = transport_health(tmp_path, now_ms=NOW)
    assert (report.state_exists, report.health_state, report.rollout_gate,
            report.rollout_gate_reasons, report.stale) == (
        False, "healthy", "hold", ["no_cycle"], True)
    assert report.recommendation == ACTIONS["no_cycle"]


def test_transport_health_after_healthy_cycle(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = transport_health(tmp_path, now_ms=NOW + 5)
    assert report.model_dump(include={"health_state", "rollout_gate", "state_age_ms", "stale",
                                      "rollout_gate_reasons"}) == {
        "health_state": "healthy", "rollout_gate": "pass", "state_age_ms": 5, "stale": False,
        "rollout_gate_reasons": []}
    assert (report.health.failure_streak, report.health.last_cycle_completed) == (0, 1)


def test_stale_state_holds_with_demo_action(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = transport_health(tmp_path, now_ms=NOW + 10_000, stale_after_ms=5_000)
    assert (report.rollout_gate, report.rollout_gate_reasons, report.stale,
            report.recommendation) == ("hold", ["stale_state"], True, ACTIONS["stale"])
    assert report.rollout_gate_reason == (
        "state is stale: last cycle at 2023-11-14T22:13:20Z, 10 seconds ago (limit 5 seconds)")


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
        "target_counts", "runtime_profile_counts", "environment_counts",
        "outcome_counts", "status_code_counts", "error_code_counts", "cycle_reports",
        "invalid_cycle_reports", "reason_code_counts", "last_reason_codes",
        "processed_case_count", "health_state", "rollout_gate"}) == {
        "rollout_count": 3, "wasm_rollout_count": 1, "cloud_rollout_count": 2,
        "total_replicas": 5,
        "target_counts": {"container": 1, "kubernetes": 1, "wasm": 1},
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


def test_impossible_health_values_are_a_state_error_for_readers(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    data = json.loads((tmp_path / "state.json").read_text())
    data["health"].update(failure_streak=-3, last_cycle_failed=-1)
    (tmp_path / "state.json").write_text(json.dumps(data))
    for reader in (transport_health, deployment_status):
        with pytest.raises(StateError, match="impossible health values: failure_streak=-3 is "
                                             "negative; last_cycle_failed=-1 is negative"):
            reader(tmp_path, now_ms=NOW)


def test_pause_marker_holds_the_gate_with_who_when_and_why(tmp_path: Path) -> None:
    from tau_ops.ops import pause_runner

    cycle(tmp_path, success_case("a"))
    pause_runner(tmp_path, reason="change freeze", clock=lambda: NOW + 1000)
    report = deployment_status(tmp_path, now_ms=NOW + 2000)
    assert (report.rollout_gate, report.rollout_gate_reasons, report.runner_paused) == (
        "hold", ["runner_paused"], True)
    assert report.pause is not None
    assert (report.pause.paused_unix_ms, report.pause.paused_utc, report.pause.reason) == (
        NOW + 1000, "2023-11-14T22:13:21Z", "change freeze")
    assert report.rollout_gate_reason.endswith(
        "at 2023-11-14T22:13:21Z, 1 second ago: change freeze")
