"""The real ``tau-ops`` command line for the runner, health, status and channel store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import TESTDATA, fixture, retryable_case, run_cli, success_case, write_fixture

PASS = TESTDATA / "deployment-contract/rollout-pass.json"
MIXED = TESTDATA / "deployment-contract/mixed-outcomes.json"


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def test_runbook_runner_flags_print_summary_and_health(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                     "--deployment-fixture", PASS, "--deployment-queue-limit", "64",
                     "--deployment-processed-case-cap", "10000",
                     "--deployment-retry-max-attempts", "4",
                     "--deployment-retry-base-delay-ms", "0")
    assert result.returncode == 0, result.stderr
    summary, health = result.stdout.strip().splitlines()
    assert summary.startswith(
        "deployment runner summary: discovered=3 queued=3 applied=3 duplicate_skips=0 "
        "malformed=0 retryable_failures=0 retries=0 failed=0 upserted_rollouts=3 "
        "wasm_rollouts=1 cloud_rollouts=2")
    assert health.startswith("deployment runner health: state=healthy failure_streak=0 "
                             "queue_depth=0 reason=")


def test_runbook_health_and_status_json(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
            "--deployment-fixture", MIXED)
    health = run_cli("--deployment-state-dir", state, "--transport-health-inspect",
                     "deployment", "--transport-health-json")
    status = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                     "--deployment-status-json")
    assert health.returncode == status.returncode == 0
    rows, s = json.loads(health.stdout), json.loads(status.stdout)
    h = rows[0]
    assert (h["health_state"], h["rollout_gate"], h["health"]["failure_streak"]) == (
        "degraded", "hold", 1)
    assert (h["rollout_gate_reasons"], s["rollout_gate_reasons"]) == (
        ["health_degraded"], ["health_degraded"])
    assert s["outcome_counts"] == {"success": 2} and s["cycle_reports"] == 1
    assert s["last_reason_codes"] == [
        "malformed_inputs_observed", "retry_attempted", "retryable_failures_observed",
        "case_processing_failed", "wasm_rollout_applied", "cloud_rollout_applied"]


def test_runner_json_and_env_configuration(tmp_path: Path) -> None:
    path = write_fixture(tmp_path, *[success_case(f"c{i}") for i in range(5)])
    result = run_cli("--deployment-contract-runner", "--deployment-runner-json",
                     env={"TAU_DEPLOYMENT_STATE_DIR": str(tmp_path / "s"),
                          "TAU_DEPLOYMENT_FIXTURE": str(path),
                          "TAU_DEPLOYMENT_QUEUE_LIMIT": "2"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["queued_cases"], report["queue_depth"]) == (2, 3)
    assert (tmp_path / "s/state.json").is_file()


def test_flag_beats_environment(tmp_path: Path) -> None:
    path = write_fixture(tmp_path, *[success_case(f"c{i}") for i in range(5)])
    result = run_cli("--deployment-contract-runner", "--deployment-runner-json",
                     "--deployment-queue-limit", "4", "--deployment-fixture", path,
                     "--deployment-state-dir", tmp_path / "s",
                     env={"TAU_DEPLOYMENT_QUEUE_LIMIT": "2"})
    assert json.loads(result.stdout)["queued_cases"] == 4


def test_channel_store_inspect(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
            "--deployment-fixture", PASS)
    result = run_cli("--channel-store-root", state / "channel-store",
                     "--channel-store-inspect", "deployment/edge-wasm", "--channel-store-json")
    report = json.loads(result.stdout)
    assert (report["log_records"], report["context_records"], report["memory_exists"]) == (
        1, 1, True)
    text = run_cli("--deployment-state-dir", state, "--channel-store-inspect",
                   "deployment/cloud-api")
    assert "log_records=1" in text.stdout and text.returncode == 0


def test_contract_violation_exits_1_with_one_error_line(tmp_path: Path) -> None:
    case = success_case("c1")
    case["expected"]["status_code"] = 201
    path = write_fixture(tmp_path, case)
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", path)
    assert result.returncode == 1
    assert "case 'c1' field 'status_code'" in one_error_line(result.stderr)
    assert not (tmp_path / "s/state.json").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--deployment-contract-runner"], "needs --deployment-fixture"),
        (["--deployment-contract-runner", "--deployment-fixture", "/nonexistent.json"],
         "cannot read fixture"),
        (["--deployment-contract-runner", "--deployment-fixture", "F",
          "--deployment-queue-limit", "0"], "--deployment-queue-limit"),
        (["--deployment-contract-runner", "--deployment-fixture", "F",
          "--deployment-retry-base-delay-ms", "soon"], "--deployment-retry-base-delay-ms"),
        (["--transport-health-inspect", "smtp"], "unsupported transport"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--channel-store-inspect", "nochannel"], "deployment/<blueprint_id>"),
        ([], "nothing to do"),
    ],
)
def test_bad_usage_exits_2_with_one_error_line(tmp_path: Path, args: list[str],
                                               fragment: str) -> None:
    args = [str(write_fixture(tmp_path, success_case("a"))) if a == "F" else a for a in args]
    result = run_cli("--deployment-state-dir", tmp_path / "s", *args)
    assert result.returncode == 2
    assert fragment in one_error_line(result.stderr)


def test_invalid_environment_value_exits_2(tmp_path: Path) -> None:
    result = run_cli("--deployment-contract-runner", "--deployment-fixture", "x.json",
                     env={"TAU_DEPLOYMENT_QUEUE_LIMIT": "many"})
    assert result.returncode == 2
    assert "--deployment-queue-limit" in one_error_line(result.stderr)


def test_invalid_fixture_exits_2_and_keeps_state(tmp_path: Path) -> None:
    state = tmp_path / "s"
    run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
            "--deployment-fixture", PASS)
    before = (state / "state.json").read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(fixture(success_case("x"), retryable_case("x"))))
    result = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                     "--deployment-fixture", bad)
    assert result.returncode == 2
    assert "case 'x' field 'case_id'" in one_error_line(result.stderr)
    assert (state / "state.json").read_bytes() == before


def test_corrupt_state_is_reported_by_status_and_moved_aside_by_runner(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "state.json").write_text("{")
    status = run_cli("--deployment-state-dir", state, "--deployment-status-inspect")
    assert status.returncode == 2 and "corrupt" in one_error_line(status.stderr)
    run = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                  "--deployment-fixture", PASS)
    assert run.returncode == 0
    assert "warning: state file" in run.stderr and "state.json.corrupt-" in run.stderr
    assert len(list(state.glob("state.json.corrupt-*"))) == 1


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).parent / "tau-ops"
    exe = str(script) if script.exists() else shutil.which("tau-ops")
    assert exe, "tau-ops console script is not installed"
    result = subprocess.run([exe, "--deployment-state-dir", str(tmp_path),
                             "--transport-health-inspect", "deployment",
                             "--transport-health-json"], capture_output=True, text=True,
                            timeout=60)
    assert json.loads(result.stdout)[0]["rollout_gate_reasons"] == ["no_cycle"]


def test_unwritable_output_paths_exit_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = tmp_path / "s"
    run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
            "--deployment-fixture", PASS)
    for args in (["gate", "--deployment-state-dir", state, "--evidence-dir", blocker / "x"],
                 ["snapshot", "--deployment-state-dir", state, "--output", blocker / "a.tgz"],
                 ["report", "--deployment-state-dir", state, "--output", blocker / "r"]):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        line = one_error_line(result.stderr)
        assert line.startswith("error: cannot use ") and str(blocker) in line
