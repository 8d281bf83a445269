"""Seed compatibility of fixtures, cycles and the channel store (issue 12, workstream contract).

Each test states a behaviour of the seed's ``tau-deployment`` crate
(``deployment_contract.rs``, ``deployment_runtime.rs``) or ``tau-runtime``'s
``channel_store.rs`` / ``tau-ops``'s ``channel_store_admin.rs``, taken from
its source and its tests' assertions, and checks tau-ops against it. The
fixtures under ``testdata/seed-compat/`` are tau-ops's own equivalents of the
seed's four testdata fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, TESTDATA, fixture, run_cli, success_case

from tau_ops import FakeClock, RunnerConfig, load_fixture, run_cycle
from tau_ops.models import Fixture

SEED_FIXTURES = TESTDATA / "seed-compat"
T0 = 1_760_000_000_000


def run(state_dir: Path, fx: Fixture | str, *, start_ms: int = T0, **config: Any):
    if isinstance(fx, str):
        fx = load_fixture(SEED_FIXTURES / fx)
    clock = FakeClock(start_ms=start_ms)
    return run_cycle(fx, RunnerConfig(state_dir=state_dir, **config), clock=clock,
                     sleeper=clock.sleep)


def counters(report: Any) -> dict[str, int]:
    names = ["discovered_cases", "queued_cases", "applied_cases", "duplicate_skips",
             "malformed_cases", "retryable_failures", "retry_attempts", "failed_cases",
             "upserted_rollouts", "wasm_rollouts", "cloud_rollouts"]
    return {name: getattr(report, name) for name in names}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- The seed's runtime tests, on tau-ops's equivalent fixtures --------------------------------


def test_mixed_outcomes_cycle_counts_as_the_seed(tmp_path: Path) -> None:
    report = run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2)
    assert counters(report) == {
        "discovered_cases": 3, "queued_cases": 3, "applied_cases": 1, "duplicate_skips": 0,
        "malformed_cases": 1, "retryable_failures": 2, "retry_attempts": 1, "failed_cases": 1,
        "upserted_rollouts": 1, "wasm_rollouts": 1, "cloud_rollouts": 0}
    state = json.loads((tmp_path / "state.json").read_text())
    assert (len(state["rollouts"]), len(state["processed_case_keys"])) == (1, 2)
    assert (state["health"]["failure_streak"], report.health_state) == (1, "degraded")
    assert {"retryable_failures_observed", "case_processing_failed",
            "wasm_rollout_applied"} <= set(report.reason_codes)
    memory = (tmp_path / "channel-store/deployment/canary-edge/MEMORY.md").read_text()
    assert memory == ("# Tau Deployment Snapshot (canary-edge)\n\n- s-wasm-canary target=wasm "
                      "runtime=wasm_wasi artifact=mods/canary.wasm replicas=4 status=201 "
                      "outcome=success\n")


def test_queue_limit_backpressure_as_the_seed(tmp_path: Path) -> None:
    report = run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2, queue_limit=2)
    assert (report.discovered_cases, report.queued_cases, report.applied_cases,
            report.malformed_cases, report.failed_cases) == (3, 2, 0, 1, 1)
    assert json.loads((tmp_path / "state.json").read_text())["rollouts"] == []


def test_processed_cases_skipped_and_failures_retried_as_the_seed(tmp_path: Path) -> None:
    run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2)
    second = run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2, start_ms=T0 + 60_000)
    assert (second.duplicate_skips, second.applied_cases, second.malformed_cases,
            second.failed_cases) == (2, 0, 0, 1)


def test_failure_streak_resets_after_a_successful_cycle(tmp_path: Path) -> None:
    run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2)
    report = run(tmp_path, "rollout-pass.json", start_ms=T0 + 60_000)
    assert (report.failed_cases, report.applied_cases, report.failure_streak,
            report.health_state) == (0, 3, 0, "healthy")


@pytest.mark.parametrize(("name", "fragment"), [
    ("invalid-duplicate-case-id.json", "case 'same-id' field 'case_id': duplicate case_id"),
    ("invalid-error-code.json", "case 'm-unknown-error-code' field 'expected.error_code'"),
])
def test_invalid_seed_fixtures_are_refused(tmp_path: Path, name: str, fragment: str) -> None:
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", SEED_FIXTURES / name)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and fragment in result.stderr
    assert not (tmp_path / "s").exists()


def test_contract_drift_fails_the_cycle_and_persists_nothing(tmp_path: Path) -> None:
    doc = json.loads((SEED_FIXTURES / "mixed-outcomes.json").read_text())
    doc["cases"][0]["expected"]["response_body"]["artifact"] = "mods/canary-v2.wasm"
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(doc))
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", path)
    assert result.returncode == 1
    assert "case 's-wasm-canary' field 'response_body'" in result.stderr
    assert not (tmp_path / "s/state.json").exists()


# --- Issue 12.1: trimming ------------------------------------------------------------------


def _cli_cycle(tmp_path: Path, *cases: dict[str, Any]) -> Any:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture(*cases)))
    return run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                   "--deployment-fixture", path)


def test_padded_fields_run_as_the_seed_runs_them(tmp_path: Path) -> None:
    case = success_case("pad", region="eu-west-1", blueprint_id="edge-api")
    case.update(region=" eu-west-1 ", blueprint_id="\tedge-api ",
                container_image=" ghcr.io/tau/app:1.0 ")
    bad = {
        "schema_version": 1, "case_id": "mismatch", "deploy_target": "wasm",
        "runtime_profile": "native", "blueprint_id": "edge-api", "environment": "staging",
        "region": "iad", "wasm_module": "m.wasm",
        "expected": {"outcome": "malformed_input", "status_code": 422,
                     "error_code": " deployment_unsupported_runtime ",
                     "response_body": {"status": "rejected", "reason": "runtime_target_mismatch"}},
    }
    result = _cli_cycle(tmp_path, case, bad)
    assert (result.returncode, result.stderr) == (0, "")
    state = json.loads((tmp_path / "s/state.json").read_text())
    assert {k: state["rollouts"][0][k] for k in ("blueprint_id", "region", "artifact")} == {
        "blueprint_id": "edge-api", "region": "eu-west-1", "artifact": "ghcr.io/tau/app:1.0"}
    assert sorted(p.name for p in (tmp_path / "s/channel-store/deployment").iterdir()) == [
        "edge-api"]


def test_padded_manifest_path_is_trimmed_before_loading(tmp_path: Path) -> None:
    from tau_ops.wasm.package import package_module

    report = package_module(TESTDATA / "deployment-wasm/edge-runtime.wasm",
                            state_dir=tmp_path / "s", blueprint_id="edge-wasm")
    manifest = json.loads(Path(report.manifest_path).read_text())
    case = {
        "schema_version": 1, "case_id": "manifest", "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi", "blueprint_id": "edge-wasm", "environment": "staging",
        "region": "iad", "wasm_manifest": f"  {report.manifest_path}  ",
        "expected": {"outcome": "success", "status_code": 201, "response_body": {
            "status": "accepted", "blueprint_id": "edge-wasm", "deploy_target": "wasm",
            "runtime_profile": "wasm_wasi", "environment": "staging", "region": "iad",
            "replicas": 1, "rollout_strategy": "canary",
            "artifact": manifest["artifact_path"],
            "artifact_sha256": manifest["artifact_sha256"],
            "artifact_size_bytes": manifest["artifact_size_bytes"],
            "artifact_manifest": report.manifest_path,
            "runtime_constraints": manifest["capability_constraints"]}},
    }
    result = _cli_cycle(tmp_path, case)
    assert (result.returncode, result.stderr) == (0, "")


def test_processed_keys_are_trimmed_on_load(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({
        "schema_version": 1,
        "processed_case_keys": [" container:native:staging:batch-container:pass-container "],
        "rollouts": []}))
    report = run(tmp_path, "rollout-pass.json")
    assert (report.duplicate_skips, report.applied_cases) == (1, 2)


# --- Issue 12.12 / 13: JSON types and the JSON policy ------------------------------------------


@pytest.mark.parametrize(("value", "code"), [(True, 1), (4.0, 1)])
def test_body_values_compare_by_json_type(tmp_path: Path, value: Any, code: int) -> None:
    doc = json.loads((SEED_FIXTURES / "rollout-pass.json").read_text())
    doc["cases"][2]["expected"]["response_body"]["replicas"] = value
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", path)
    assert result.returncode == code
    assert "case 'pass-wasm' field 'response_body'" in result.stderr


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda t: t.replace('"replicas": 2,', '"replicas": 2, "replicas": 3,', 1),
     "invalid JSON: duplicate key 'replicas'"),
    (lambda t: t.replace('"schema_version": 1,', '"schema_version": true,', 1),
     "field 'schema_version': must be 1 (got true)"),
    (lambda t: t.replace('"schema_version": 1,', '"schema_version": 1.0,', 1),
     "field 'schema_version': must be 1 (got 1.0)"),
    (lambda t: t.replace('"replicas": 2,', '"replicas": true,', 1),
     "case 'pass-container' field 'replicas'"),
    (lambda t: t.replace('"status": "accepted"', '"status": "accepted", "deep": '
                         + "[" * 1000 + "]" * 1000, 1),
     "invalid JSON: nesting deeper than 64 levels"),
])
def test_policy_breaking_fixtures_are_bad_input(tmp_path: Path, mutate: Any,
                                                fragment: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(mutate((SEED_FIXTURES / "rollout-pass.json").read_text()))
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr


def test_dev_zero_fixture_is_bad_input_at_once(tmp_path: Path) -> None:
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", "/dev/zero", timeout=30)
    assert (result.returncode, result.stderr) == (
        2, "error: cannot read fixture /dev/zero: fixture /dev/zero is not a regular file "
           "(character device)\n")


# --- Issue 12.6: channel store records ---------------------------------------------------------


def test_channel_records_follow_the_seed(tmp_path: Path) -> None:
    run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2)
    base = tmp_path / "channel-store/deployment"
    success = jsonl(base / "canary-edge/log.jsonl")
    failed = jsonl(base / "prod-cluster/log.jsonl")
    assert success == [{
        "timestamp_unix_ms": T0, "direction": "system",
        "event_key": "wasm:wasm_wasi:staging:canary-edge:s-wasm-canary",
        "source": "tau-deployment-runner",
        "payload": {"outcome": "success", "case_id": "s-wasm-canary", "deploy_target": "wasm",
                    "runtime_profile": "wasm_wasi", "blueprint_id": "canary-edge",
                    "status_code": 201, "artifact": "mods/canary.wasm", "artifact_sha256": "",
                    "artifact_size_bytes": 0, "artifact_manifest": "",
                    "runtime_constraints": [], "rollout_strategy": "canary"}}]
    assert failed[0]["payload"] == {
        "outcome": "retryable_failure", "case_id": "r-control-plane",
        "deploy_target": "kubernetes", "runtime_profile": "native",
        "blueprint_id": "prod-cluster", "status_code": 503,
        "error_code": "deployment_backend_unavailable", "reason": "control_plane_unavailable"}
    assert [e["text"] for e in jsonl(base / "prod-cluster/context.jsonl")] == [
        "deployment case r-control-plane outcome=retryable_failure "
        "error_code=deployment_backend_unavailable status=503"]
    # MEMORY.md only where the blueprint has a success.
    assert sorted(p.parent.name for p in base.glob("*/MEMORY.md")) == ["canary-edge"]


def test_inspect_text_starts_with_the_seed_line(tmp_path: Path) -> None:
    run(tmp_path, "mixed-outcomes.json", retry_max_attempts=2)
    folder = tmp_path / "channel-store/deployment/canary-edge"
    with open(folder / "log.jsonl", "a") as handle:  # one line too deep to be JSON to the seed
        handle.write("[" * 1000 + "]" * 1000 + "\n")
    result = run_cli("--channel-store-root", tmp_path / "channel-store",
                     "--channel-store-inspect", "deployment/canary-edge")
    assert result.returncode == 0, result.stderr
    size = (folder / "MEMORY.md").stat().st_size
    assert result.stdout.splitlines()[0] == (
        f"channel store inspect: transport=deployment channel_id=canary-edge dir={folder} "
        "log_records=1 context_records=1 invalid_log_lines=1 invalid_context_lines=0 "
        "artifact_records=0 invalid_artifact_lines=0 active_artifacts=0 expired_artifacts=0 "
        f"memory_exists=true memory_bytes={size}")


# --- A state dir laid out by the seed keeps working --------------------------------------------


def seed_state_dir(state_dir: Path) -> Path:
    """The files the seed leaves after one mixed-outcomes cycle (retry attempts 2), by hand."""
    ts = T0
    channels = state_dir / "channel-store/channels/deployment"
    wasm_key = "wasm:wasm_wasi:staging:canary-edge:s-wasm-canary"
    bad_key = "wasm:native:staging:mismatch-edge:m-target-runtime"
    retry_key = "kubernetes:native:production:prod-cluster:r-control-plane"
    state = {
        "schema_version": 1,
        "processed_case_keys": [bad_key, wasm_key],
        "rollouts": [{
            "case_key": wasm_key, "case_id": "s-wasm-canary", "deploy_target": "wasm",
            "runtime_profile": "wasm_wasi", "blueprint_id": "canary-edge",
            "environment": "staging", "region": "fra", "artifact": "mods/canary.wasm",
            "artifact_sha256": "", "artifact_size_bytes": 0, "artifact_manifest": "",
            "runtime_constraints": [], "replicas": 4, "rollout_strategy": "canary",
            "status_code": 201, "outcome": "success", "error_code": "",
            "updated_unix_ms": ts - 3}],
        "health": {"updated_unix_ms": ts, "cycle_duration_ms": 4, "queue_depth": 0,
                   "active_runs": 0, "failure_streak": 1, "last_cycle_discovered": 3,
                   "last_cycle_processed": 3, "last_cycle_completed": 2,
                   "last_cycle_failed": 1, "last_cycle_duplicates": 0},
    }
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps(state, indent=2))
    (state_dir / "runtime-events.jsonl").write_text(json.dumps({
        "timestamp_unix_ms": ts + 1, "health_state": "degraded",
        "health_reason": "latest cycle reported failed events",
        "reason_codes": ["malformed_inputs_observed", "retry_attempted",
                         "retryable_failures_observed", "case_processing_failed",
                         "wasm_rollout_applied"],
        "discovered_cases": 3, "queued_cases": 3, "applied_cases": 1, "duplicate_skips": 0,
        "malformed_cases": 1, "retryable_failures": 2, "retry_attempts": 1, "failed_cases": 1,
        "upserted_rollouts": 1, "wasm_rollouts": 1, "cloud_rollouts": 0, "backlog_cases": 0,
        "failure_streak": 1}) + "\n")

    def channel(bp: str, key: str, payload: dict[str, Any], text: str) -> Path:
        folder = channels / bp
        for sub in ("artifacts", "attachments"):
            (folder / sub).mkdir(parents=True)
            (folder / sub / "index.jsonl").write_text("")
        (folder / "schema.json").write_text(json.dumps(
            {"schema_version": 1, "transport": "deployment", "channel_id": bp}, indent=2) + "\n")
        (folder / "log.jsonl").write_text(json.dumps({
            "timestamp_unix_ms": ts - 3, "direction": "system", "event_key": key,
            "source": "tau-deployment-runner", "payload": payload}) + "\n")
        (folder / "context.jsonl").write_text(json.dumps(
            {"timestamp_unix_ms": ts - 3, "role": "system", "text": text}) + "\n")
        return folder

    edge = channel("canary-edge", wasm_key, {
        "outcome": "success", "case_id": "s-wasm-canary", "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi", "blueprint_id": "canary-edge", "status_code": 201,
        "artifact": "mods/canary.wasm", "artifact_sha256": "", "artifact_size_bytes": 0,
        "artifact_manifest": "", "runtime_constraints": [], "rollout_strategy": "canary"},
        "deployment case s-wasm-canary applied target=wasm runtime=wasm_wasi status=201")
    (edge / "MEMORY.md").write_text(
        "# Tau Deployment Snapshot (canary-edge)\n\n- s-wasm-canary target=wasm "
        "runtime=wasm_wasi artifact=mods/canary.wasm replicas=4 status=201 outcome=success\n")
    channel("mismatch-edge", bad_key, {
        "outcome": "malformed_input", "case_id": "m-target-runtime", "deploy_target": "wasm",
        "runtime_profile": "native", "blueprint_id": "mismatch-edge", "status_code": 422,
        "error_code": "deployment_unsupported_runtime"},
        "deployment case m-target-runtime outcome=malformed_input "
        "error_code=deployment_unsupported_runtime status=422")
    channel("prod-cluster", retry_key, {
        "outcome": "retryable_failure", "case_id": "r-control-plane",
        "deploy_target": "kubernetes", "runtime_profile": "native",
        "blueprint_id": "prod-cluster", "status_code": 503,
        "error_code": "deployment_backend_unavailable"},
        "deployment case r-control-plane outcome=retryable_failure "
        "error_code=deployment_backend_unavailable status=503")
    return state_dir


def test_seed_state_dir_is_inspected_in_place(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s")
    folder = state_dir / "channel-store/channels/deployment/canary-edge"
    result = run_cli("--channel-store-root", state_dir / "channel-store",
                     "--channel-store-inspect", "deployment/canary-edge")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"channel store inspect: transport=deployment channel_id=canary-edge dir={folder} "
        "log_records=1 context_records=1 invalid_log_lines=0 invalid_context_lines=0 "
        "artifact_records=0 invalid_artifact_lines=0 active_artifacts=0 expired_artifacts=0 "
        f"memory_exists=true memory_bytes={(folder / 'MEMORY.md').stat().st_size}")
    assert "layout=seed" in result.stdout.splitlines()[1]


def test_seed_state_dir_is_diagnosed(tmp_path: Path) -> None:
    from tau_ops.ops.diagnosis import diagnose

    state_dir = seed_state_dir(tmp_path / "s")
    found = diagnose(state_dir, now_ms=T0 + 1000)
    assert (found.health_state, found.failure_streak) == ("degraded", 1)
    assert "degraded_case_processing_failed" in [f.symptom for f in found.findings]


def test_seed_state_dir_is_continued_by_the_runner(tmp_path: Path) -> None:
    from tau_ops.analysis.loaders import load_channel_log
    from tau_ops.ops.diagnosis import diagnose

    state_dir = seed_state_dir(tmp_path / "s")
    channels = state_dir / "channel-store/channels/deployment"
    report = run(state_dir, "mixed-outcomes.json", retry_max_attempts=2, start_ms=T0 + 60_000)
    # The seed's processed keys are honoured: only the failed case runs again.
    assert (report.duplicate_skips, report.failed_cases, report.failure_streak) == (2, 1, 2)
    assert [e["payload"]["outcome"] for e in jsonl(channels / "prod-cluster/log.jsonl")] == [
        "retryable_failure", "retryable_failure"]
    assert not (state_dir / "channel-store/deployment").exists()  # no second tree
    run(state_dir, "rollout-pass.json", start_ms=T0 + 120_000)
    assert not (state_dir / "channel-store/deployment").exists()
    assert (channels / "canary-edge/MEMORY.md").read_text() == (
        "# Tau Deployment Snapshot (canary-edge)\n\n"
        "- pass-wasm target=wasm runtime=wasm_wasi artifact=mods/canary.wasm replicas=4 "
        "status=201 outcome=success\n"
        "- s-wasm-canary target=wasm runtime=wasm_wasi artifact=mods/canary.wasm replicas=4 "
        "status=201 outcome=success\n")
    assert (channels / "batch-container/log.jsonl").is_file()
    frame = load_channel_log(state_dir, "prod-cluster")
    assert frame["target"].to_list() == ["kubernetes"] * 3
    run(state_dir, "mixed-outcomes.json", retry_max_attempts=2, start_ms=T0 + 180_000)
    found = diagnose(state_dir, now_ms=T0 + 181_000)
    cases = {f.symptom: [c.case_id for c in f.cases] for f in found.findings}
    assert cases["degraded_case_processing_failed"] == ["r-control-plane"]


# --- Round trip: tau-ops's state.json parses with the seed's structs --------------------------

U16, U32, U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
# Field -> (JSON kind, bound, required) of the seed's serde structs (deployment_runtime.rs,
# transport_health.rs). serde ignores unknown fields; a field with #[serde(default)] may be
# missing but, when present, must have its type (null is refused for a struct or a number).
SEED_STATE = {"schema_version": ("int", U32, False), "processed_case_keys": ("strings", 0, False),
              "rollouts": ("rollouts", 0, False), "health": ("health", 0, False)}
SEED_ROLLOUT = {
    "case_key": ("str", 0, True), "case_id": ("str", 0, True), "deploy_target": ("str", 0, True),
    "runtime_profile": ("str", 0, True), "blueprint_id": ("str", 0, True),
    "environment": ("str", 0, True), "region": ("str", 0, True), "artifact": ("str", 0, True),
    "artifact_sha256": ("str", 0, False), "artifact_size_bytes": ("int", U64, False),
    "artifact_manifest": ("str", 0, False), "runtime_constraints": ("strings", 0, False),
    "replicas": ("int", U16, True), "rollout_strategy": ("str", 0, True),
    "status_code": ("int", U16, True), "outcome": ("str", 0, True),
    "error_code": ("str", 0, True), "updated_unix_ms": ("int", U64, True)}
SEED_HEALTH = {name: ("int", U64, False) for name in (
    "updated_unix_ms", "cycle_duration_ms", "queue_depth", "active_runs", "failure_streak",
    "last_cycle_discovered", "last_cycle_processed", "last_cycle_completed",
    "last_cycle_failed", "last_cycle_duplicates")}


def seed_errors(value: Any, schema: dict[str, tuple[str, int, bool]], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    errors = []
    for name, (kind, bound, required) in schema.items():
        if name not in value:
            errors += [f"{where}.{name}: missing"] if required else []
            continue
        item = value[name]
        ok = {
            "str": isinstance(item, str),
            "int": type(item) is int and 0 <= item <= bound,
            "strings": isinstance(item, list) and all(isinstance(s, str) for s in item),
            "rollouts": isinstance(item, list),
            "health": isinstance(item, dict),
        }[kind]
        if not ok:
            errors.append(f"{where}.{name}: {item!r} is not a seed {kind}")
        elif kind == "rollouts":
            for i, record in enumerate(item):
                errors += seed_errors(record, SEED_ROLLOUT, f"{where}.rollouts[{i}]")
        elif kind == "health":
            errors += seed_errors(item, SEED_HEALTH, f"{where}.health")
    return errors


def test_state_written_by_tau_ops_parses_with_the_seed_structs(tmp_path: Path) -> None:
    state_dir = tmp_path / "s"
    for name, extra in [("mixed-outcomes.json", ["--deployment-retry-max-attempts", "2"]),
                        ("rollout-pass.json", [])]:
        result = run_cli("--deployment-state-dir", state_dir, "--deployment-contract-runner",
                         "--deployment-fixture", SEED_FIXTURES / name, *extra, cwd=REPO)
        assert result.returncode == 0, result.stderr
        state = json.loads((state_dir / "state.json").read_text())
        assert seed_errors(state, SEED_STATE, "state") == []
        assert len(state["processed_case_keys"]) == len(set(state["processed_case_keys"]))
    assert [r["case_key"] for r in state["rollouts"]] == sorted(
        r["case_key"] for r in state["rollouts"])


def test_the_schema_check_can_fail() -> None:
    bad = {"schema_version": 1, "rollouts": [{"case_key": "k", "replicas": True}],
           "health": None}
    assert seed_errors(bad, SEED_STATE, "state")[:2] == [
        "state.rollouts[0].case_id: missing", "state.rollouts[0].deploy_target: missing"]
    assert "state.health: None is not a seed health" in seed_errors(bad, SEED_STATE, "state")


def test_state_before_any_cycle_parses_with_the_seed_structs(tmp_path: Path) -> None:
    from tau_ops.wasm.package import package_module

    package_module(TESTDATA / "deployment-wasm/edge-runtime.wasm", state_dir=tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    # the seed's default snapshot (its packager writes {}, its runner every field 0), never null
    assert state["health"] == dict.fromkeys(state["health"], 0)
    assert seed_errors(state, SEED_STATE, "state") == []


def test_leftover_temp_file_in_the_seed_tree_is_removed_by_the_next_cycle(tmp_path: Path) -> None:
    state_dir = seed_state_dir(tmp_path / "s")
    leftover = state_dir / "channel-store/channels/deployment/canary-edge/.MEMORY.md.x1.tmp"
    leftover.write_text("half a file")
    run(state_dir, "rollout-pass.json", start_ms=T0 + 60_000)
    assert not leftover.exists()
