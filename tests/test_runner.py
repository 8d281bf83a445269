"""One runner cycle (SPEC section 3): queue, duplicates, retries, persistence, health."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import fixture, malformed_case, retryable_case, success_case

from tau_ops import (
    ContractViolation,
    FakeClock,
    RunnerConfig,
    parse_fixture,
    read_state,
    run_cycle,
)
from tau_ops.models import CycleSummary, Fixture
from tau_ops.runner import backoff_delay_ms

MISSING_IMAGE = {"status": 400, "error_code": "deployment_missing_artifact",
                 "reason": "missing_container_image", "container_image": ""}


def fx(*cases: dict[str, Any]) -> Fixture:
    return parse_fixture(json.dumps(fixture(*cases)))


def run(state_dir: Path, *cases: dict[str, Any], clock: FakeClock | None = None, **config: Any):
    clock = clock or FakeClock()
    return run_cycle(fx(*cases), RunnerConfig(state_dir=state_dir, **config),
                     clock=clock, sleeper=clock.sleep)


def events(state_dir: Path) -> list[dict[str, Any]]:
    lines = (state_dir / "runtime-events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_success_cycle_upserts_sorted_rollouts(tmp_path: Path) -> None:
    report = run(tmp_path, success_case("b", target="wasm", blueprint_id="edge"),
                 success_case("a", target="container", replicas=2))
    state = read_state(tmp_path)
    assert state is not None
    assert [r.case_key for r in state.rollouts] == [
        "container:native:staging:cloud-api:a", "wasm:wasm_wasi:staging:edge:b"]
    record = state.rollouts[0].model_dump()
    assert record == {
        "case_key": "container:native:staging:cloud-api:a", "case_id": "a",
        "deploy_target": "container", "runtime_profile": "native", "blueprint_id": "cloud-api",
        "environment": "staging", "region": "us-east-1", "artifact": "ghcr.io/tau/app:1.0",
        "artifact_sha256": "", "artifact_size_bytes": 0, "artifact_manifest": "",
        "runtime_constraints": [], "replicas": 2, "rollout_strategy": "recreate",
        "status_code": 202, "outcome": "success", "error_code": "",
        "updated_unix_ms": 1_700_000_000_000,
    }
    assert report.model_dump(include={"applied_cases", "wasm_rollouts", "cloud_rollouts",
                                      "upserted_rollouts", "reason_codes"}) == {
        "applied_cases": 2, "wasm_rollouts": 1, "cloud_rollouts": 1, "upserted_rollouts": 2,
        "reason_codes": ["wasm_rollout_applied", "cloud_rollout_applied"]}
    assert state.processed_case_keys == [
        "container:native:staging:cloud-api:a", "wasm:wasm_wasi:staging:edge:b"]


def test_queue_limit_takes_sorted_prefix_and_reports_backlog(tmp_path: Path) -> None:
    cases = [success_case(f"c{i}") for i in (3, 1, 2)]
    report = run(tmp_path, *cases, queue_limit=2)
    assert (report.discovered_cases, report.queued_cases, report.queue_depth) == (3, 2, 1)
    assert report.reason_codes == ["queue_backpressure_applied", "cloud_rollout_applied"]
    assert [r.case_id for r in read_state(tmp_path).rollouts] == ["c1", "c2"]  # type: ignore[union-attr]
    assert report.health_state == "healthy"
    follow = run(tmp_path, *cases, queue_limit=2)
    assert (follow.duplicate_skips, follow.applied_cases) == (2, 0)


def test_duplicates_are_skipped_across_cycles(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"), malformed_case("m", **MISSING_IMAGE))
    second = run(tmp_path, success_case("a"), malformed_case("m", **MISSING_IMAGE),
                 success_case("b"))
    assert (second.duplicate_skips, second.applied_cases, second.malformed_cases) == (2, 1, 0)
    assert second.reason_codes == ["duplicate_cases_skipped", "cloud_rollout_applied"]
    assert len(events(tmp_path)) == 2


def test_processed_cap_evicts_oldest_keys(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"), success_case("b"), success_case("c"),
        processed_case_cap=2)
    keys = read_state(tmp_path).processed_case_keys  # type: ignore[union-attr]
    assert keys == ["kubernetes:native:staging:cloud-api:b",
                    "kubernetes:native:staging:cloud-api:c"]
    again = run(tmp_path, success_case("a"), processed_case_cap=2)
    assert again.applied_cases == 1  # evicted key is no longer a duplicate


def test_processed_cap_above_count_keeps_every_key(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"), success_case("b"), processed_case_cap=3)
    assert len(read_state(tmp_path).processed_case_keys) == 2  # type: ignore[union-attr]


def test_processed_cap_zero_keeps_no_keys(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"), processed_case_cap=0)
    assert read_state(tmp_path).processed_case_keys == []  # type: ignore[union-attr]
    assert run(tmp_path, success_case("a"), processed_case_cap=0).applied_cases == 1


def test_retries_count_attempts_and_back_off_exponentially(tmp_path: Path) -> None:
    clock = FakeClock()
    report = run(tmp_path, retryable_case("r"), clock=clock,
                 retry_max_attempts=4, retry_base_delay_ms=100)
    assert clock.sleeps == [0.1, 0.2, 0.4]
    assert report.model_dump(include={"retryable_failures", "retry_attempts", "failed_cases"}) == {
        "retryable_failures": 4, "retry_attempts": 3, "failed_cases": 1}
    assert report.reason_codes == ["retry_attempted", "retryable_failures_observed",
                                   "case_processing_failed"]
    assert report.cycle_duration_ms == 700


def test_backoff_exponent_is_capped_at_ten() -> None:
    assert [backoff_delay_ms(5, n) for n in (1, 2, 11, 12, 40)] == [5, 10, 5120, 5120, 5120]


def test_single_attempt_never_sleeps(tmp_path: Path) -> None:
    clock = FakeClock()
    report = run(tmp_path, retryable_case("r"), clock=clock, retry_max_attempts=1,
                 retry_base_delay_ms=1000)
    assert clock.sleeps == [] and report.retry_attempts == 0 and report.failed_cases == 1
    assert report.reason_codes == ["retryable_failures_observed", "case_processing_failed"]


def test_failed_case_is_retried_next_cycle(tmp_path: Path) -> None:
    run(tmp_path, retryable_case("r"))
    state = read_state(tmp_path)
    assert state is not None and state.processed_case_keys == [] and state.rollouts == []
    again = run(tmp_path, retryable_case("r"))
    assert again.duplicate_skips == 0 and again.failed_cases == 1


def test_failure_streak_reaches_failing_after_three_cycles(tmp_path: Path) -> None:
    states = [run(tmp_path, retryable_case("r")).health_state for _ in range(3)]
    assert states == ["degraded", "degraded", "failing"]
    assert read_state(tmp_path).health.failure_streak == 3  # type: ignore[union-attr]
    recovered = run(tmp_path, success_case("ok"))
    assert (recovered.failure_streak, recovered.health_state) == (0, "healthy")


def test_malformed_case_is_processed_without_rollout(tmp_path: Path) -> None:
    report = run(tmp_path, malformed_case("m", **MISSING_IMAGE))
    state = read_state(tmp_path)
    assert state is not None and state.rollouts == []
    assert state.processed_case_keys == ["kubernetes:native:staging:cloud-api:m"]
    assert report.reason_codes == ["malformed_inputs_observed"]
    assert report.health_state == "degraded"


def test_every_reason_code_appears_in_order(tmp_path: Path) -> None:
    run(tmp_path, success_case("a0"))
    report = run(tmp_path, success_case("a0"), malformed_case("m1", **MISSING_IMAGE),
                 retryable_case("r1"), success_case("w1", target="wasm"),
                 success_case("k1"), success_case("z9"), queue_limit=5)
    assert report.reason_codes == [
        "queue_backpressure_applied", "duplicate_cases_skipped", "malformed_inputs_observed",
        "retry_attempted", "retryable_failures_observed", "case_processing_failed",
        "wasm_rollout_applied", "cloud_rollout_applied"]


def test_duplicate_only_cycle_is_healthy(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    assert run(tmp_path, success_case("a")).reason_codes == ["duplicate_cases_skipped"]
    assert events(tmp_path)[-1]["health_state"] == "healthy"


def test_healthy_cycle_code_stands_alone_when_no_condition_holds() -> None:
    from tau_ops.runner import reason_codes_for

    assert reason_codes_for(CycleSummary(discovered_cases=3, queued_cases=3), 0) == [
        "healthy_cycle"]
    assert reason_codes_for(CycleSummary(), 2) == ["queue_backpressure_applied"]


def test_event_line_has_summary_health_and_reason_codes(tmp_path: Path) -> None:
    clock = FakeClock(start_ms=5_000)
    run(tmp_path, success_case("a"), retryable_case("r"), clock=clock, retry_max_attempts=2,
        retry_base_delay_ms=10)
    (event,) = events(tmp_path)
    assert event == {
        "discovered_cases": 2, "queued_cases": 2, "applied_cases": 1, "duplicate_skips": 0,
        "malformed_cases": 0, "retryable_failures": 2, "retry_attempts": 1, "failed_cases": 1,
        "upserted_rollouts": 1, "wasm_rollouts": 0, "cloud_rollouts": 1,
        "timestamp_unix_ms": 5_010, "health_state": "degraded",
        "health_reason": "last cycle had 1 failed case(s), 1 retry attempt(s) (failure_streak=1)",
        "reason_codes": ["retry_attempted", "retryable_failures_observed",
                         "case_processing_failed", "cloud_rollout_applied"],
        "backlog_cases": 0, "failure_streak": 1, "cycle_duration_ms": 10,
    }


def test_health_snapshot_counts_last_cycle(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    run(tmp_path, success_case("a"), success_case("b"), malformed_case("m", **MISSING_IMAGE),
        retryable_case("r"), success_case("z"), queue_limit=4)
    health = read_state(tmp_path).health  # type: ignore[union-attr]
    assert health is not None
    assert health.model_dump() == {
        "updated_unix_ms": 1_700_000_000_000, "cycle_duration_ms": 0, "queue_depth": 1,
        "active_runs": 0, "failure_streak": 1, "last_cycle_discovered": 5,
        "last_cycle_processed": 4, "last_cycle_completed": 2, "last_cycle_failed": 1,
        "last_cycle_duplicates": 1, "last_cycle_malformed": 1, "last_cycle_retries": 3,
    }


def test_contract_violation_persists_nothing(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    bad = success_case("b")
    bad["expected"]["response_body"]["region"] = "mars"
    with pytest.raises(ContractViolation, match="case 'b' field 'response_body'"):
        run(tmp_path, success_case("c"), bad)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_unknown_state_fields_survive_a_cycle(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    doc = json.loads((tmp_path / "state.json").read_text())
    doc["owner_tool"] = {"name": "other", "version": 3}
    doc["rollouts"][0]["annotation"] = "keep me"
    doc["wasm_deliverables"] = [{"blueprint_id": "edge", "custom": [1, 2]}]
    (tmp_path / "state.json").write_text(json.dumps(doc))
    run(tmp_path, success_case("b"))
    after = json.loads((tmp_path / "state.json").read_text())
    assert after["owner_tool"] == {"name": "other", "version": 3}
    assert after["rollouts"][0]["annotation"] == "keep me"
    assert after["wasm_deliverables"] == [{"blueprint_id": "edge", "custom": [1, 2]}]


def test_corrupt_state_is_moved_aside_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state.json").write_text("{not json")
    clock = FakeClock(start_ms=42)
    report = run(tmp_path, success_case("a"), clock=clock)
    aside = tmp_path / "state.json.corrupt-42"
    assert aside.read_text() == "{not json"
    assert str(aside) in caplog.text
    assert report.applied_cases == 1
    assert len(read_state(tmp_path).rollouts) == 1  # type: ignore[union-attr]


def test_channel_store_gets_one_line_per_handled_case(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    run(tmp_path, success_case("a"), malformed_case("m", **MISSING_IMAGE), retryable_case("r"))
    folder = tmp_path / "channel-store/deployment/cloud-api"
    logs = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert [(entry["event_key"].split(":")[-1], entry["payload"]["outcome"]) for entry in logs] == [
        ("a", "success"), ("m", "malformed_input"), ("r", "retryable_failure")]
    assert logs[1] == {
        "timestamp_unix_ms": 1_700_000_000_000, "direction": "system",
        "event_key": "kubernetes:native:staging:cloud-api:m",
        "source": "tau-deployment-runner",
        "payload": {"outcome": "malformed_input", "case_id": "m", "deploy_target": "kubernetes",
                    "runtime_profile": "native", "blueprint_id": "cloud-api", "status_code": 400,
                    "error_code": "deployment_missing_artifact",
                    "reason": "missing_container_image"},
    }
    assert logs[0]["payload"] == {
        "outcome": "success", "case_id": "a", "deploy_target": "kubernetes",
        "runtime_profile": "native", "blueprint_id": "cloud-api", "status_code": 202,
        "artifact": "ghcr.io/tau/app:1.0", "artifact_sha256": "", "artifact_size_bytes": 0,
        "artifact_manifest": "", "runtime_constraints": [], "rollout_strategy": "rolling",
    }
    contexts = [json.loads(line)["text"]
                for line in (folder / "context.jsonl").read_text().splitlines()]
    assert contexts == [
        "deployment case a applied target=kubernetes runtime=native status=202",
        "deployment case m outcome=malformed_input error_code=deployment_missing_artifact "
        "status=400",
        "deployment case r outcome=retryable_failure error_code=deployment_backend_unavailable "
        "status=503",
    ]
    assert (folder / "MEMORY.md").read_text() == (
        "# Tau Deployment Snapshot (cloud-api)\n\n"
        "- a target=kubernetes runtime=native artifact=ghcr.io/tau/app:1.0 replicas=1 "
        "status=202 outcome=success\n"
    )


def test_memory_is_written_only_for_a_blueprint_with_a_success(tmp_path: Path) -> None:
    run(tmp_path, malformed_case("m", blueprint_id="only-bad", **MISSING_IMAGE))
    folder = tmp_path / "channel-store/deployment/only-bad"
    assert (folder / "log.jsonl").is_file()
    assert not (folder / "MEMORY.md").exists()


def test_unsafe_blueprint_id_stays_inside_channel_store(tmp_path: Path) -> None:
    run(tmp_path, success_case("a", blueprint_id="../../escape"))
    assert (tmp_path / "channel-store/deployment/.._.._escape/log.jsonl").is_file()
    assert not (tmp_path.parent / "escape").exists()


def test_events_rotate_and_keep_max_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "600")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "3")
    for i in range(8):
        run(tmp_path, success_case(f"c{i}"))
    names = sorted(p.name for p in tmp_path.glob("runtime-events.jsonl*"))
    assert names == ["runtime-events.jsonl", "runtime-events.jsonl.1", "runtime-events.jsonl.2"]
    assert all(p.stat().st_size <= 600 for p in tmp_path.glob("runtime-events.jsonl*"))


@pytest.mark.parametrize("bad", ["0", "-5", "abc", ""])
def test_invalid_rotation_settings_fall_back_to_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", bad)
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", bad)
    for i in range(3):
        run(tmp_path, success_case(f"c{i}"))
    assert [p.name for p in tmp_path.glob("runtime-events.jsonl*")] == ["runtime-events.jsonl"]


@pytest.mark.parametrize("option", [{"queue_limit": 0}, {"retry_max_attempts": 0},
                                    {"processed_case_cap": -1}, {"retry_base_delay_ms": -1}])
def test_invalid_config_is_a_usage_error(option: dict[str, int]) -> None:
    from tau_ops import UsageError

    with pytest.raises(UsageError):
        RunnerConfig(**option)


def test_cycle_restores_the_garbage_collector(tmp_path: Path) -> None:
    import gc

    run(tmp_path, success_case("a"))
    assert gc.isenabled()
    bad = success_case("b")
    bad["expected"]["status_code"] = 201
    with pytest.raises(ContractViolation):
        run(tmp_path, bad)
    assert gc.isenabled()
    gc.disable()
    try:
        run(tmp_path, success_case("c"))
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


# --- Issue 12.8: the processed-case cap applies at load and as keys are added -----------------


def _keys(state_dir: Path) -> list[str]:
    return json.loads((state_dir / "state.json").read_text())["processed_case_keys"]


def test_lowering_the_cap_lets_old_keys_stop_suppressing_cases(tmp_path: Path) -> None:
    run(tmp_path, *(success_case(c) for c in ("a", "b", "c")))
    report = run(tmp_path, success_case("a"), processed_case_cap=2)
    # Loaded keys are capped to the newest two (b, c): a is rolled out again.
    assert (report.duplicate_skips, report.applied_cases) == (0, 1)
    assert _keys(tmp_path) == ["kubernetes:native:staging:cloud-api:c",
                               "kubernetes:native:staging:cloud-api:a"]


def test_cap_applies_as_each_key_is_added_within_a_cycle(tmp_path: Path) -> None:
    run(tmp_path, success_case("z"), processed_case_cap=1)
    # a is added first and evicts z at once, so z is handled again in the same cycle.
    report = run(tmp_path, success_case("a"), success_case("z"), processed_case_cap=1)
    assert (report.duplicate_skips, report.applied_cases) == (0, 2)
    assert _keys(tmp_path) == ["kubernetes:native:staging:cloud-api:z"]


def test_processed_keys_are_trimmed_and_deduplicated_on_load(tmp_path: Path) -> None:
    key = "kubernetes:native:staging:cloud-api:a"
    (tmp_path / "state.json").write_text(json.dumps(
        {"schema_version": 1, "processed_case_keys": [f"  {key} ", key, "", "x:y"],
         "rollouts": []}))
    report = run(tmp_path, success_case("a"))
    assert report.duplicate_skips == 1
    assert _keys(tmp_path) == [key, "x:y"]


def test_cap_zero_keeps_no_keys(tmp_path: Path) -> None:
    run(tmp_path, success_case("a"))
    report = run(tmp_path, success_case("a"), processed_case_cap=0)
    assert (report.duplicate_skips, _keys(tmp_path)) == (0, [])


# --- Issue 12.1: trimmed fields in the cycle ---------------------------------------------------


def test_padded_region_and_blueprint_roll_out_trimmed(tmp_path: Path) -> None:
    raw = success_case("a", region="eu-west-1", blueprint_id="edge")
    raw.update(region=" eu-west-1 ", blueprint_id=" edge ")
    report = run(tmp_path, raw)
    assert report.applied_cases == 1
    record = json.loads((tmp_path / "state.json").read_text())["rollouts"][0]
    assert (record["region"], record["blueprint_id"], record["case_key"]) == (
        "eu-west-1", "edge", "kubernetes:native:staging:edge:a")
    assert (tmp_path / "channel-store/deployment/edge/log.jsonl").is_file()


# --- Issue 13.5: state.json integers are strict ------------------------------------------------


@pytest.mark.parametrize("value", [True, 3.0])
def test_state_with_a_non_integer_counter_is_corrupt(tmp_path: Path, value: Any) -> None:
    from tau_ops import StateError

    (tmp_path / "state.json").write_text(json.dumps(
        {"schema_version": 1, "processed_case_keys": [], "rollouts": [],
         "health": {"failure_streak": value}}))
    with pytest.raises(StateError):
        read_state(tmp_path)
