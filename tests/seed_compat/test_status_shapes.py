"""Seed compatibility of the status documents: shapes, jq paths, text lines, the default health.

The seed (njfio/rsBot) prints ``--transport-health-json`` as a list of rows
(``transport``, ``target``, ``state_path``, ``health{}``), a deployment status
with ``health{}``, ``target_counts``, ``events_log_path`` and
``events_log_present``, and text lines whose formats are copied here from its
``render_helpers.rs`` and ``deployment_runtime.rs``. Dashboards and scripts
written for the seed must keep working on tau-ops's output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import TESTDATA, run_cli

from tau_ops.wasm import package_module

PASS = TESTDATA / "deployment-contract/rollout-pass.json"
MIXED = TESTDATA / "deployment-contract/mixed-outcomes.json"
SEED_HEALTH_KEYS = [
    "updated_unix_ms", "cycle_duration_ms", "queue_depth", "active_runs", "failure_streak",
    "last_cycle_discovered", "last_cycle_processed", "last_cycle_completed",
    "last_cycle_failed", "last_cycle_duplicates",
]
SEED_STATUS_KEYS = [
    "state_path", "events_log_path", "events_log_present", "health_state", "health_reason",
    "rollout_gate", "processed_case_count", "rollout_count", "target_counts",
    "runtime_profile_counts", "environment_counts", "outcome_counts", "status_code_counts",
    "error_code_counts", "total_replicas", "wasm_rollout_count", "cloud_rollout_count",
    "cycle_reports", "invalid_cycle_reports", "last_reason_codes", "reason_code_counts",
    "health",
]


def jq(program: str, document: str) -> str:
    """Run the real ``jq`` as an operator's script would."""
    exe = shutil.which("jq")
    if exe is None:
        pytest.skip("jq is not installed")
    done = subprocess.run([exe, "-c", program], input=document, capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("mixed")
    result = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                     "--deployment-fixture", MIXED)
    assert result.returncode == 0, result.stderr
    return state


def test_transport_health_json_is_a_list_of_seed_rows(mixed: Path) -> None:
    out = run_cli("--deployment-state-dir", mixed, "--transport-health-inspect", "deployment",
                  "--transport-health-json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [list(row)[:4] for row in rows] == [["transport", "target", "state_path", "health"]]
    assert list(rows[0]["health"])[:10] == SEED_HEALTH_KEYS
    assert (rows[0]["transport"], rows[0]["target"], rows[0]["state_path"]) == (
        "deployment", "cloud-and-wasm-runtime", str(mixed / "state.json"))
    assert jq(".[0].health.failure_streak", out.stdout) == "1"
    assert jq(".[0] | [.rollout_gate, .rollout_gate_reasons]", out.stdout) == (
        '["hold",["health_degraded"]]')


def test_deployment_status_json_has_the_seed_fields_first(mixed: Path) -> None:
    out = run_cli("--deployment-state-dir", mixed, "--deployment-status-inspect",
                  "--deployment-status-json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc)[:len(SEED_STATUS_KEYS)] == SEED_STATUS_KEYS
    assert jq(".target_counts", out.stdout) == '{"kubernetes":1,"wasm":1}'
    assert jq("[.events_log_path, .events_log_present]", out.stdout) == json.dumps(
        [str(mixed / "runtime-events.jsonl"), True], separators=(",", ":"))
    assert jq(".health | [.failure_streak, .last_cycle_failed, .last_cycle_completed]",
              out.stdout) == "[1,1,5]"


def test_runner_summary_line_is_the_seeds(tmp_path: Path) -> None:
    out = run_cli("--deployment-state-dir", tmp_path, "--deployment-contract-runner",
                  "--deployment-fixture", PASS)
    summary, health = out.stdout.splitlines()
    assert summary.split(" reason_codes=")[0] == (
        "deployment runner summary: discovered=3 queued=3 applied=3 duplicate_skips=0 "
        "malformed=0 retryable_failures=0 retries=0 failed=0 upserted_rollouts=3 "
        "wasm_rollouts=1 cloud_rollouts=2")
    assert health == ("deployment runner health: state=healthy failure_streak=0 queue_depth=0 "
                      "reason=last cycle completed with no failures, malformed inputs or retries")


def test_transport_health_text_starts_with_the_seeds_row_line(mixed: Path) -> None:
    out = run_cli("--deployment-state-dir", mixed, "--transport-health-inspect", "deployment")
    first, gate = out.stdout.splitlines()[:2]
    health = json.loads((mixed / "state.json").read_text())["health"]
    assert first == (
        f"transport health inspect: transport=deployment target=cloud-and-wasm-runtime "
        f"state_path={mixed / 'state.json'} updated_unix_ms={health['updated_unix_ms']} "
        f"cycle_duration_ms={health['cycle_duration_ms']} queue_depth=0 active_runs=0 "
        "failure_streak=1 last_cycle_discovered=6 last_cycle_processed=6 "
        "last_cycle_completed=5 last_cycle_failed=1 last_cycle_duplicates=0")
    assert gate == ("rollout gate: rollout_gate=hold rollout_gate_reasons=health_degraded "
                    "health_state=degraded stale=false runner_paused=false")


def test_status_text_starts_with_the_seeds_line(mixed: Path) -> None:
    out = run_cli("--deployment-state-dir", mixed, "--deployment-status-inspect")
    first = out.stdout.splitlines()[0]
    assert first == (
        f"deployment status inspect: state_path={mixed / 'state.json'} "
        f"events_log_path={mixed / 'runtime-events.jsonl'} events_log_present=true "
        "health_state=degraded health_reason=last cycle had 1 failed case(s), 3 malformed "
        "input(s), 3 retry attempt(s) (failure_streak=1) rollout_gate=hold "
        "processed_case_count=5 rollout_count=2 target_counts=kubernetes:1,wasm:1 "
        "runtime_profile_counts=native:1,wasm_wasi:1 environment_counts=production:1,staging:1 "
        "outcome_counts=success:2 status_code_counts=201:1,202:1 error_code_counts=none "
        "total_replicas=4 wasm_rollout_count=1 cloud_rollout_count=1 cycle_reports=1 "
        "invalid_cycle_reports=0 last_reason_codes=malformed_inputs_observed,retry_attempted,"
        "retryable_failures_observed,case_processing_failed,wasm_rollout_applied,"
        "cloud_rollout_applied reason_code_counts=case_processing_failed:1,"
        "cloud_rollout_applied:1,malformed_inputs_observed:1,retry_attempted:1,"
        "retryable_failures_observed:1,wasm_rollout_applied:1 queue_depth=0 failure_streak=1 "
        "last_cycle_failed=1 last_cycle_completed=5")


def test_packaging_into_a_fresh_dir_writes_the_seeds_default_health(tmp_path: Path) -> None:
    state = tmp_path / "fresh"
    package_module(TESTDATA / "deployment-wasm/edge-runtime.wasm", state_dir=state)
    health = json.loads((state / "state.json").read_text())["health"]
    assert health is not None
    assert {k: health[k] for k in SEED_HEALTH_KEYS} == dict.fromkeys(SEED_HEALTH_KEYS, 0)
    out = run_cli("--deployment-state-dir", state, "--transport-health-inspect", "deployment",
                  "--transport-health-json")
    assert jq(".[0] | [.state_exists, .rollout_gate_reasons, .updated_utc]", out.stdout) == (
        '[true,["no_cycle"],null]')


def test_a_null_health_written_by_older_tau_ops_reads_as_no_cycle(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({
        "schema_version": 1, "processed_case_keys": [], "rollouts": [], "health": None,
        "wasm_deliverables": [{"blueprint_id": "keep"}]}))
    out = run_cli("--deployment-state-dir", tmp_path, "--deployment-status-inspect",
                  "--deployment-status-json")
    assert out.returncode == 0, out.stderr
    assert jq("[.rollout_gate, .rollout_gate_reasons, .health.updated_unix_ms]",
              out.stdout) == '["hold",["no_cycle"],0]'
