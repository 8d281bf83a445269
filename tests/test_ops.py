"""Operator workflows: demo, promotion gate, snapshot, pause switch and diagnosis."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from builders import (
    REPO,
    TESTDATA,
    fixture,
    malformed_case,
    retryable_case,
    run_cli,
    success_case,
    write_fixture,
)

from tau_ops import FakeClock, RunnerConfig, RunnerPaused, parse_fixture, run_cycle
from tau_ops.health import ACTIONS
from tau_ops.ops import (
    create_snapshot,
    diagnose,
    pause_runner,
    promotion_gate,
    resume_runner,
    verify_snapshot,
)

NOW = 1_700_000_000_000
MISSING_IMAGE = {"status": 400, "error_code": "deployment_missing_artifact",
                 "reason": "missing_container_image", "container_image": ""}


def cycle(state: Path, *cases: dict[str, Any], clock: FakeClock | None = None,
          **config: int) -> None:
    clock = clock or FakeClock(NOW)
    run_cycle(parse_fixture(json.dumps(fixture(*cases))), RunnerConfig(state_dir=state, **config),
              clock=clock, sleeper=clock.sleep)


def symptoms(state: Path, **kw: Any) -> dict[str, Any]:
    return {f.symptom: f for f in diagnose(state, now_ms=NOW, **kw).findings}


# --- demo ---------------------------------------------------------------------------------

def test_demo_script_ends_with_gate_pass_and_is_repeatable(tmp_path: Path) -> None:
    import shutil
    import subprocess

    for name in ("scripts", "testdata"):
        shutil.copytree(REPO / name, tmp_path / name)
    outputs = []
    for _ in range(2):
        result = subprocess.run(["bash", "scripts/demo/deployment.sh"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120,
                                env={"PATH": str(Path(__import__("sys").executable).parent)
                                     + ":/usr/bin:/bin"})
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0].strip().endswith("deployment demo: rollout_gate=pass health_state=healthy")
    re = __import__("re")
    strip = [re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<utc>", re.sub(r"\d{13}", "<ms>", out))
             for out in outputs]
    assert strip[0] == strip[1]
    for step in ("package", "runner", "health", "status", "channel"):
        assert f": {step}\n$ tau-ops " in outputs[0]
    assert (tmp_path / ".tau/demo-deployment/state.json").is_file()


# --- gate ---------------------------------------------------------------------------------

def test_gate_passes_on_healthy_fresh_state_with_evidence(tmp_path: Path) -> None:
    state, evidence = tmp_path / "s", tmp_path / "evidence"
    path = write_fixture(tmp_path, success_case("a"), success_case("w", target="wasm"))
    verdict = promotion_gate(state_dir=state, fixtures=[path], evidence_root=evidence,
                             clock=FakeClock(NOW))
    assert (verdict.verdict, verdict.reasons) == ("pass", [])
    step = verdict.steps[0]
    assert step.monitored == {"failure_streak": 0, "last_cycle_failed": 0, "queue_depth": 0,
                              "rollout_gate": "pass", "wasm_rollout_count": 1,
                              "cloud_rollout_count": 1}
    folder = Path(verdict.evidence_dir)
    assert folder.parent == evidence and folder.name.startswith("20231114T221320.000Z")
    summary = json.loads((folder / "summary.json").read_text())
    names = {f["path"] for f in summary["files"]}
    assert {"step-01-fixture.json", "step-01-cycle.json", "step-01-transport-health.json",
            "step-01-deployment-status.json", "step-01-wasm-deliverables.json", "state.json",
            "verdict.json"} == names
    for entry in summary["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


@pytest.mark.parametrize(
    ("cases", "fragment"),
    [
        ([retryable_case("r")], "health is degraded"),
        ([malformed_case("m", **MISSING_IMAGE)], "malformed input"),
    ],
)
def test_gate_holds_on_degraded_cycle(tmp_path: Path, cases: list[dict[str, Any]],
                                      fragment: str) -> None:
    path = write_fixture(tmp_path, *cases)
    verdict = promotion_gate(state_dir=tmp_path / "s", fixtures=[path],
                             evidence_root=tmp_path / "e", clock=FakeClock(NOW))
    assert verdict.verdict == "hold"
    assert any(fragment in reason for reason in verdict.reasons)


def test_gate_holds_on_failing_and_stale_states(tmp_path: Path) -> None:
    failing = tmp_path / "failing"
    for _ in range(3):
        cycle(failing, retryable_case("r"))
    held = promotion_gate(state_dir=failing, evidence_root=tmp_path / "e", clock=FakeClock(NOW))
    assert held.verdict == "hold" and "health is failing" in held.reasons[0]
    stale = tmp_path / "stale"
    cycle(stale, success_case("a"))
    late = FakeClock(NOW + 2 * 24 * 3600 * 1000)
    verdict = promotion_gate(state_dir=stale, evidence_root=tmp_path / "e", clock=late)
    assert (verdict.verdict, verdict.rollout_gate_reasons) == ("hold", ["stale_state"])
    assert verdict.reasons == ["state is stale: last cycle at 2023-11-14T22:13:20Z, 2 days ago "
                               "(limit 1 day)"]


def test_gate_holds_on_queue_backlog_only_through_health(tmp_path: Path) -> None:
    path = write_fixture(tmp_path, success_case("a"), success_case("b"))
    verdict = promotion_gate(state_dir=tmp_path / "s", fixtures=[path], queue_limit=1,
                             evidence_root=tmp_path / "e", clock=FakeClock(NOW))
    assert verdict.verdict == "pass" and verdict.steps[0].monitored["queue_depth"] == 1


def test_gate_stops_at_first_holding_step(tmp_path: Path) -> None:
    easy = write_fixture(tmp_path, success_case("a"), name="easy")
    hard = write_fixture(tmp_path, success_case("b"), retryable_case("r"), name="hard")
    never = write_fixture(tmp_path, success_case("c"), name="never")
    verdict = promotion_gate(state_dir=tmp_path / "s", fixtures=[easy, hard, never],
                             evidence_root=tmp_path / "e", clock=FakeClock(NOW))
    assert [s.verdict for s in verdict.steps] == ["pass", "hold"]
    assert verdict.steps_planned == 3 and verdict.verdict == "hold"
    assert verdict.steps[1].monitored["last_cycle_failed"] == 1
    assert not (Path(verdict.evidence_dir) / "step-03-fixture.json").exists()


def test_gate_holds_on_contract_violation_and_tampered_deliverable(tmp_path: Path) -> None:
    from tau_ops.wasm import package_module

    state = tmp_path / "s"
    report = package_module(TESTDATA / "deployment-wasm/edge-runtime.wasm", state_dir=state)
    bad = success_case("x")
    bad["expected"]["status_code"] = 201
    path = write_fixture(tmp_path, bad)
    verdict = promotion_gate(state_dir=state, fixtures=[path], evidence_root=tmp_path / "e",
                             clock=FakeClock(NOW))
    assert verdict.verdict == "hold" and "contract violation" in verdict.reasons[0]
    cycle(state, success_case("ok"))
    artifact = Path(report.artifact_path)
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x01")
    tampered = promotion_gate(state_dir=state, evidence_root=tmp_path / "e", clock=FakeClock(NOW))
    assert tampered.verdict == "hold"
    assert any("wasm deliverable edge-wasm/wasm_wasi failed verification" in r
               for r in tampered.reasons)


def test_a_copied_state_dir_is_gated_on_its_own_artifacts_from_any_folder(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    assert run_cli("demo", "--deployment-state-dir", "d", cwd=work).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(work / "d", copy)
    (copy / ".tau-ops-demo").unlink()
    from_elsewhere = run_cli("gate", "--deployment-state-dir", copy, "--evidence-dir",
                             tmp_path / "e1", cwd=tmp_path)
    assert (from_elsewhere.returncode, from_elsewhere.stderr) == (0, "")
    assert "verdict=pass" in from_elsewhere.stdout
    artifact = next((copy / "wasm-artifacts").rglob("*.wasm"))
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x01")
    tampered = run_cli("gate", "--deployment-state-dir", copy, "--evidence-dir", tmp_path / "e2",
                       cwd=work)  # the original's artifact, unchanged, is also reachable here
    assert tampered.returncode == 1
    assert "wasm deliverable edge-wasm/wasm_wasi failed verification" in tampered.stdout


def test_gate_cli_exit_codes_and_json(tmp_path: Path) -> None:
    good = write_fixture(tmp_path, success_case("a"), name="good")
    result = run_cli("gate", "--deployment-state-dir", tmp_path / "s", "--fixture", good,
                     "--evidence-dir", tmp_path / "e", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == "pass"
    flaky = write_fixture(tmp_path, retryable_case("r"), name="flaky")
    held = run_cli("gate", "--deployment-state-dir", tmp_path / "s", "--fixture", flaky,
                   "--evidence-dir", tmp_path / "e")
    assert held.returncode == 1 and "promotion gate: verdict=hold" in held.stdout
    assert "reason: health is degraded" in held.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    bad = run_cli("gate", "--deployment-state-dir", tmp_path / "s", "--fixture", broken,
                  "--evidence-dir", tmp_path / "e")
    assert bad.returncode == 2 and bad.stderr.startswith("error: fixture")


# --- snapshot -----------------------------------------------------------------------------

def test_snapshot_round_trips_and_never_touches_state(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"), retryable_case("r"))
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz", clock=FakeClock(NOW))
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before
    with tarfile.open(report.archive_path) as tar:
        names = sorted(tar.getnames())
    assert "state/state.json" in names and "state/SNAPSHOT-MANIFEST.json" in names
    assert "state/.tau-ops.lock" not in names
    assert report.file_count == len(before) - 1  # the lock file is not state
    checked = verify_snapshot(report.archive_path)
    assert (checked.ok, checked.problems, checked.file_count) == (True, [], report.file_count)


def test_snapshot_verify_catches_a_changed_byte(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    archive = Path(report.archive_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    checked = verify_snapshot(archive)
    assert not checked.ok and checked.problems


def test_snapshot_verify_catches_rebuilt_archive_via_sidecar(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    (state / "state.json").write_text((state / "state.json").read_text().replace('"a"', '"b"'))
    rebuilt = create_snapshot(state, output=tmp_path / "other.tar.gz")
    Path(report.archive_path).write_bytes(Path(rebuilt.archive_path).read_bytes())
    checked = verify_snapshot(report.archive_path)
    assert not checked.ok
    assert "archive sha256 differs from the manifest" in checked.problems
    assert "state.json: sha256 differs from the sidecar manifest" in checked.problems


def test_snapshot_cli_default_path_and_verify(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    made = run_cli("snapshot", "--deployment-state-dir", state, "--json")
    assert made.returncode == 0, made.stderr
    archive = Path(json.loads(made.stdout)["archive_path"])
    assert archive.parent == tmp_path and archive.name.startswith("s-snapshot-")
    ok = run_cli("snapshot", "--verify", archive)
    assert ok.returncode == 0 and "ok=true" in ok.stdout
    archive.write_bytes(archive.read_bytes()[:-20])
    bad = run_cli("snapshot", "--verify", archive)
    assert bad.returncode == 1 and "ok=false" in bad.stdout
    missing = run_cli("snapshot", "--deployment-state-dir", tmp_path / "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("error: state dir")


# --- pause --------------------------------------------------------------------------------

def test_paused_runner_refuses_and_resumed_runner_runs(tmp_path: Path) -> None:
    state = tmp_path / "s"
    pause_runner(state, reason="incident 42")
    with pytest.raises(RunnerPaused):
        cycle(state, success_case("a"))
    assert not (state / "state.json").exists()
    path = write_fixture(tmp_path, success_case("a"))
    refused = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                      "--deployment-fixture", path)
    assert refused.returncode == 1 and "runner is paused" in refused.stderr
    status = run_cli("runner", "status", "--deployment-state-dir", state, "--json")
    assert json.loads(status.stdout)["reason"] == "incident 42"
    assert not resume_runner(state).paused
    ran = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                  "--deployment-fixture", path)
    assert ran.returncode == 0, ran.stderr


def test_runner_pause_cli(tmp_path: Path) -> None:
    state = tmp_path / "s"
    paused = run_cli("runner", "pause", "--deployment-state-dir", state, "--reason", "freeze")
    assert paused.returncode == 0 and "paused=true" in paused.stdout
    resumed = run_cli("runner", "resume", "--deployment-state-dir", state)
    assert "paused=false" in resumed.stdout


# --- diagnose -----------------------------------------------------------------------------

def test_diagnose_healthy_state_has_no_symptoms(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = diagnose(tmp_path, now_ms=NOW)
    assert (report.healthy, report.findings) == (True, [])


def test_diagnose_failed_cases_and_retries(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"), retryable_case("r", blueprint_id="edge"))
    found = symptoms(tmp_path)
    assert set(found) == {"degraded_case_processing_failed", "degraded_retry_attempted",
                          "degraded_retryable_failures_observed"}
    failed = found["degraded_case_processing_failed"]
    assert failed.action == ACTIONS["case_processing_failed"]
    assert [(c.blueprint_id, c.case_id, c.error_code) for c in failed.cases] == [
        ("edge", "r", "deployment_backend_unavailable")]
    assert len(failed.cycles) == 1
    assert found["degraded_retry_attempted"].action == ACTIONS["retry_attempted"]


def test_diagnose_malformed_inputs(tmp_path: Path) -> None:
    cycle(tmp_path, malformed_case("m", **MISSING_IMAGE))
    found = symptoms(tmp_path)
    assert list(found) == ["degraded_malformed_inputs_observed"]
    finding = found["degraded_malformed_inputs_observed"]
    assert finding.action == ACTIONS["malformed_inputs_observed"]
    assert [(c.case_id, c.reason) for c in finding.cases] == [("m", "missing_container_image")]


def test_diagnose_failing_streak_names_its_cycles(tmp_path: Path) -> None:
    clock = FakeClock(NOW - 3000)
    for _ in range(3):
        cycle(tmp_path, retryable_case("r"), clock=clock)
        clock.advance(1000)
    found = symptoms(tmp_path)
    streak = found["failing_streak"]
    assert streak.action == ACTIONS["failing"]
    assert [c.timestamp_unix_ms for c in streak.cycles] == [NOW - 3000, NOW - 2000, NOW - 1000]
    assert {c.case_id for c in streak.cases} == {"r"}


def test_diagnose_stale_hold_and_queue_depth(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"), success_case("b"), queue_limit=1)
    found = symptoms(tmp_path, stale_after_ms=0)
    assert set(found) == {"queue_depth_nonzero"}
    later = {f.symptom: f for f in diagnose(tmp_path, now_ms=NOW + 10, stale_after_ms=5).findings}
    assert set(later) == {"stale_hold", "queue_depth_nonzero"}
    assert later["stale_hold"].action == ACTIONS["stale"]
    assert later["queue_depth_nonzero"].action == ACTIONS["queue_backpressure_applied"]


def test_diagnose_cli_text_and_json(tmp_path: Path) -> None:
    cycle(tmp_path, retryable_case("r"))
    text = run_cli("diagnose", "--deployment-state-dir", tmp_path)
    assert text.returncode == 0
    assert "- symptom: degraded_case_processing_failed" in text.stdout
    assert f"  action: {ACTIONS['case_processing_failed']}" in text.stdout
    doc = json.loads(run_cli("diagnose", "--deployment-state-dir", tmp_path, "--json").stdout)
    assert doc["health_state"] == "degraded" and len(doc["findings"]) >= 3


def test_diagnose_text_escapes_control_characters_from_the_channel_log(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, retryable_case("r"))
    log = next((state / "channel-store").rglob("log.jsonl"))
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for line in lines:
        line["payload"]["case_id"] = "r\x1b[31m\nerror: forged"
        line["payload"]["error_code"] = "E" * 5000
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = run_cli("diagnose", "--deployment-state-dir", state)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert not any(x.startswith("error:") for x in result.stdout.splitlines())
    case_lines = [x for x in result.stdout.splitlines() if x.startswith("  case: ")]
    assert case_lines and all("r\\x1b[31m\\nerror: forged" in x and len(x) < 700
                              for x in case_lines)
