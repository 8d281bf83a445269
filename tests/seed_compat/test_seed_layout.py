"""A state dir the seed laid out, with blueprint ids outside ``[A-Za-z0-9_-]``, keeps working.

The seed's runner (``deployment_runtime.rs``) files a blueprint under
``normalized_blueprint_channel_id``: the trimmed id when it is made only of
``[A-Za-z0-9_-]``, else ``deployment``; ``channel_store.rs`` then applies
``sanitize_for_path`` (other characters become ``_``, ``_`` trimmed at both
ends, nothing left gives ``channel``). So ``edge.api``, ``eu west`` and ``a/b``
share ``channels/deployment/deployment/``. It stamps each case's log line
when it handles the case and the cycle's event line after all cases, so log
lines are a few ms older than their event. The state dirs below are built by
hand from those formats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builders import fixture, retryable_case, run_cli, success_case

from tau_ops import FakeClock, RunnerConfig, run_cycle
from tau_ops.analysis.loaders import load_channel_log
from tau_ops.channel_store import seed_channel_name
from tau_ops.models import Fixture
from tau_ops.ops.diagnosis import diagnose

T0 = 1_760_000_000_000
MINUTE = 60_000
EDGE_KEY = "kubernetes:native:staging:edge.api:c1-edge"
AB_KEY = "kubernetes:native:staging:a/b:c3-ab"
WEST_KEY = "kubernetes:native:production:eu west:c2-west"


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rollout(case_id: str, blueprint_id: str, key: str, ts: int) -> dict[str, Any]:
    return {"case_key": key, "case_id": case_id, "deploy_target": "kubernetes",
            "runtime_profile": "native", "blueprint_id": blueprint_id,
            "environment": "staging", "region": "us-east-1",
            "artifact": "ghcr.io/tau/app:1.0", "artifact_sha256": "", "artifact_size_bytes": 0,
            "artifact_manifest": "", "runtime_constraints": [], "replicas": 1,
            "rollout_strategy": "rolling", "status_code": 202, "outcome": "success",
            "error_code": "", "updated_unix_ms": ts}


def success_line(case_id: str, blueprint_id: str, key: str, ts: int) -> dict[str, Any]:
    return {"timestamp_unix_ms": ts, "direction": "system", "event_key": key,
            "source": "tau-deployment-runner", "payload": {
                "outcome": "success", "case_id": case_id, "deploy_target": "kubernetes",
                "runtime_profile": "native", "blueprint_id": blueprint_id, "status_code": 202,
                "artifact": "ghcr.io/tau/app:1.0", "artifact_sha256": "",
                "artifact_size_bytes": 0, "artifact_manifest": "", "runtime_constraints": [],
                "rollout_strategy": "rolling"}}


def failure_line(case_id: str, blueprint_id: str, key: str, ts: int) -> dict[str, Any]:
    return {"timestamp_unix_ms": ts, "direction": "system", "event_key": key,
            "source": "tau-deployment-runner", "payload": {
                "outcome": "retryable_failure", "case_id": case_id,
                "deploy_target": "kubernetes", "runtime_profile": "native",
                "blueprint_id": blueprint_id, "status_code": 503,
                "error_code": "deployment_backend_unavailable"}}


def seed_event(ts: int, streak: int, codes: list[str]) -> dict[str, Any]:
    return {"timestamp_unix_ms": ts, "health_state": "failing" if streak >= 3 else "degraded",
            "health_reason": "latest cycle reported failed events", "reason_codes": codes,
            "discovered_cases": 3, "queued_cases": 3, "applied_cases": 0, "duplicate_skips": 0,
            "malformed_cases": 0, "retryable_failures": 1, "retry_attempts": 0,
            "failed_cases": 1, "upserted_rollouts": 0, "wasm_rollouts": 0, "cloud_rollouts": 0,
            "backlog_cases": 0, "failure_streak": streak}


def seed_state_dir(state_dir: Path, *, later_cycles: int = 0) -> Path:
    """What the seed leaves after its cycles (retry attempts 1), written by hand.

    Cycle 1 (event at T0+10): c1-edge (``edge.api``) and c3-ab (``a/b``) succeed,
    c2-west (``eu west``) fails. Each later cycle (a minute apart) fails c2-west
    again. Every log line is stamped 3-8 ms before its cycle's event line.
    """
    shared = state_dir / "channel-store/channels/deployment/deployment"
    shared.mkdir(parents=True)
    for sub in ("artifacts", "attachments"):
        (shared / sub).mkdir()
        (shared / sub / "index.jsonl").write_text("")
    (shared / "schema.json").write_text(json.dumps(
        {"schema_version": 1, "transport": "deployment", "channel_id": "deployment"}))
    logs = [success_line("c1-edge", "edge.api", EDGE_KEY, T0 + 2),
            failure_line("c2-west", "eu west", WEST_KEY, T0 + 5),
            success_line("c3-ab", "a/b", AB_KEY, T0 + 7)]
    codes = ["retryable_failures_observed", "case_processing_failed", "cloud_rollout_applied"]
    events = [seed_event(T0 + 10, 1, codes)]
    for n in range(1, later_cycles + 1):
        logs.append(failure_line("c2-west", "eu west", WEST_KEY, T0 + n * MINUTE + 5))
        events.append(seed_event(T0 + n * MINUTE + 10, n + 1,
                                 ["duplicate_cases_skipped", *codes[:2]]))
    (shared / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in logs))
    (shared / "context.jsonl").write_text("".join(json.dumps(
        {"timestamp_unix_ms": x["timestamp_unix_ms"], "role": "system",
         "text": f"deployment case {x['payload']['case_id']}"}) + "\n" for x in logs))
    # The seed rewrites the shared folder's MEMORY.md for each success: the last one wins.
    (shared / "MEMORY.md").write_text(
        "# Tau Deployment Snapshot (a/b)\n\n- c3-ab target=kubernetes runtime=native "
        "artifact=ghcr.io/tau/app:1.0 replicas=1 status=202 outcome=success")
    last = events[-1]
    (state_dir / "state.json").write_text(json.dumps({
        "schema_version": 1, "processed_case_keys": [EDGE_KEY, AB_KEY],
        "rollouts": [rollout("c3-ab", "a/b", AB_KEY, T0 + 7),
                     rollout("c1-edge", "edge.api", EDGE_KEY, T0 + 2)],
        "health": {"updated_unix_ms": last["timestamp_unix_ms"], "cycle_duration_ms": 9,
                   "queue_depth": 0, "active_runs": 0, "failure_streak": last["failure_streak"],
                   "last_cycle_discovered": 3, "last_cycle_processed": 3,
                   "last_cycle_completed": 0 if later_cycles else 2,
                   "last_cycle_failed": 1, "last_cycle_duplicates": 2 if later_cycles else 0},
    }, indent=2))
    (state_dir / "runtime-events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events))
    return state_dir


def seed_fixture() -> Fixture:
    return Fixture.model_validate(fixture(
        success_case("c1-edge", blueprint_id="edge.api"),
        retryable_case("c2-west", blueprint_id="eu west"),
        success_case("c3-ab", blueprint_id="a/b"),
        success_case("c4-edge", blueprint_id="edge.api"),
    ))


def test_seed_channel_names_are_the_seeds() -> None:
    # sanitize_for_path's own test: "owner/repo#1" -> owner_repo_1 (never reached: '/' maps
    # the id to "deployment" first), "***" -> channel, "good.name" kept.
    ids = ["edge-api_1", " edge ", "edge.api", "eu west", "a/b", "", "_edge_", "___", "é"]
    assert [seed_channel_name(i) for i in ids] == [
        "edge-api_1", "edge", "deployment", "deployment", "deployment", "deployment", "edge",
        "channel", "deployment"]


def test_seed_shared_folder_is_continued_inspected_and_analysed(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s")
    channels = state_dir / "channel-store/channels/deployment"
    shared = channels / "deployment"
    clock = FakeClock(start_ms=T0 + MINUTE)
    report = run_cycle(seed_fixture(), RunnerConfig(state_dir=state_dir, retry_max_attempts=1),
                       clock=clock, sleeper=clock.sleep)
    assert (report.duplicate_skips, report.applied_cases, report.failed_cases) == (2, 1, 1)
    # No second tree: neither the runbook's nor a tau-ops-named folder beside the seed's.
    assert sorted(p.name for p in (state_dir / "channel-store").iterdir()) == ["channels"]
    assert sorted(p.name for p in channels.iterdir()) == ["deployment"]
    history = [(x["payload"]["blueprint_id"], x["payload"]["case_id"], x["payload"]["outcome"])
               for x in jsonl(shared / "log.jsonl")]
    assert history == [
        ("edge.api", "c1-edge", "success"), ("eu west", "c2-west", "retryable_failure"),
        ("a/b", "c3-ab", "success"),
        ("eu west", "c2-west", "retryable_failure"), ("edge.api", "c4-edge", "success")]
    assert len(jsonl(shared / "context.jsonl")) == 5
    # The shared MEMORY.md is the last success's blueprint, as the seed leaves it.
    assert (shared / "MEMORY.md").read_text() == (
        "# Tau Deployment Snapshot (edge.api)\n\n"
        "- c1-edge target=kubernetes runtime=native artifact=ghcr.io/tau/app:1.0 replicas=1 "
        "status=202 outcome=success\n"
        "- c4-edge target=kubernetes runtime=native artifact=ghcr.io/tau/app:1.0 replicas=1 "
        "status=202 outcome=success\n")

    inspected = run_cli("--channel-store-root", state_dir / "channel-store",
                        "--channel-store-inspect", "deployment/edge.api", "--channel-store-json")
    assert inspected.returncode == 0, inspected.stderr
    found = json.loads(inspected.stdout)
    assert (found["channel_id"], found["channel_dir"], found["log_records"],
            found["layout"], found["memory_exists"]) == (
        "edge.api", str(shared), 5, "seed", True)

    assert load_channel_log(state_dir, "edge.api")["case_id"].to_list() == ["c1-edge", "c4-edge"]
    assert load_channel_log(state_dir, "eu west")["case_id"].to_list() == ["c2-west"] * 2
    assert load_channel_log(state_dir, "a/b")["case_id"].to_list() == ["c3-ab"]
    assert load_channel_log(state_dir)["blueprint_id"].to_list() == [
        "edge.api", "eu west", "a/b", "eu west", "edge.api"]

    found_now = diagnose(state_dir, now_ms=T0 + MINUTE + 1000)
    cases = {f.symptom: [(c.blueprint_id, c.case_id) for c in f.cases]
             for f in found_now.findings}
    assert cases["degraded_case_processing_failed"] == [("eu west", "c2-west")]


def test_a_fresh_state_dir_keeps_the_runbook_folders(tmp_path: Path) -> None:
    clock = FakeClock(start_ms=T0)
    run_cycle(seed_fixture(), RunnerConfig(state_dir=tmp_path, retry_max_attempts=1),
              clock=clock, sleeper=clock.sleep)
    base = tmp_path / "channel-store/deployment"
    assert sorted(p.name for p in base.iterdir()) == ["a_b", "edge.api", "eu_west"]
    assert load_channel_log(tmp_path, "a/b")["case_id"].to_list() == ["c3-ab"]


def test_seed_written_dir_is_diagnosed_with_its_cases(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s", later_cycles=2)
    shared = state_dir / "channel-store/channels/deployment/deployment"
    # A line stamped after the last event (a cycle still running) belongs to no cycle yet.
    with (shared / "log.jsonl").open("a") as handle:
        handle.write(json.dumps(failure_line("c9-late", "eu west", "k", T0 + 2 * MINUTE + 50))
                     + "\n")
    found = diagnose(state_dir, now_ms=T0 + 2 * MINUTE + 1000)
    assert (found.health_state, found.failure_streak) == ("failing", 3)
    cases = {f.symptom: [(c.blueprint_id, c.case_id, c.event_key) for c in f.cases]
             for f in found.findings}
    # The failing streak spans three cycles: one failure each; the degraded symptoms
    # show only the last cycle's.
    assert cases["failing_streak"] == [("eu west", "c2-west", WEST_KEY)] * 3
    assert cases["degraded_case_processing_failed"] == [("eu west", "c2-west", WEST_KEY)]
    assert cases["degraded_retryable_failures_observed"] == [("eu west", "c2-west", WEST_KEY)]


def test_seed_written_dir_is_diagnosed_from_the_cli(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s")
    result = run_cli("diagnose", "--deployment-state-dir", state_dir, "--json")
    assert result.returncode in (0, 1), result.stderr
    found = json.loads(result.stdout)
    cases = {f["symptom"]: [c["case_id"] for c in f["cases"]] for f in found["findings"]}
    assert cases["degraded_case_processing_failed"] == ["c2-west"]


def test_an_empty_runbook_folder_does_not_hide_the_seeds_tree(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s")
    (state_dir / "channel-store/deployment").mkdir()  # e.g. made by hand or by another tool
    shared = state_dir / "channel-store/channels/deployment/deployment"
    clock = FakeClock(start_ms=T0 + MINUTE)
    run_cycle(seed_fixture(), RunnerConfig(state_dir=state_dir, retry_max_attempts=1),
              clock=clock, sleeper=clock.sleep)
    assert list((state_dir / "channel-store/deployment").iterdir()) == []
    assert len(jsonl(shared / "log.jsonl")) == 5
    inspected = run_cli("--channel-store-root", state_dir / "channel-store",
                        "--channel-store-inspect", "deployment/edge.api", "--channel-store-json")
    assert json.loads(inspected.stdout)["log_records"] == 5
