"""The rollout console, driven as an operator would: set values, click buttons, read the panel."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from builders import TESTDATA, retryable_case, success_case, write_fixture

import tau_ops
from tau_ops.clock import FakeClock
from tau_ops.ops import pause_runner
from tau_ops.widgets import RolloutConsole, fixture_chunks
from tau_ops.widgets._display import codes_html

PASS_FIXTURE = TESTDATA / "deployment-contract" / "rollout-pass.json"
MIXED_FIXTURE = TESTDATA / "deployment-contract" / "mixed-outcomes.json"
WASM = TESTDATA / "deployment-wasm"


def events(state: Path) -> list[dict[str, object]]:
    lines = (state / "runtime-events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def gate_classes(console: RolloutConsole) -> set[str]:
    return {c for c in console.gate_label._dom_classes if c.startswith("tau-gate-")}


def test_building_the_console_only_reads_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, PASS_FIXTURE, clock=FakeClock())
    assert not state.exists()
    assert gate_classes(console) == {"tau-gate-hold"}
    assert ">hold<" in console.gate_label.value
    assert console.reason_label.value == "no deployment cycle recorded yet"
    assert console.reason_codes_label.value == "<em>none</em>"
    assert console.fixture_path.value == str(PASS_FIXTURE)


def test_run_cycle_button_runs_the_fixture_and_turns_the_gate_to_pass(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, PASS_FIXTURE, clock=FakeClock())
    console.run_button.click()
    [report] = console.reports
    assert report.reason_codes == ["wasm_rollout_applied", "cloud_rollout_applied"]
    assert [e["reason_codes"] for e in events(state)] == [report.reason_codes]
    assert gate_classes(console) == {"tau-gate-pass"}
    assert ">pass<" in console.gate_label.value and ">healthy<" in console.health_label.value
    assert console.reason_codes_label.value == codes_html(report.reason_codes)
    assert (console.failure_streak_label.value, console.queue_depth_label.value) == ("0", "0")
    assert (console.progress.value, console.progress.max) == (1, 1)
    assert console.progress.bar_style == "success"
    assert "ran 1 cycle(s) of rollout-pass: health healthy" in console.message.value
    assert not console.run_button.disabled


def test_degraded_cycle_holds_the_gate_and_shows_streak_and_codes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, MIXED_FIXTURE, clock=FakeClock())
    console.retry_max_attempts.value = 2
    console.run_button.click()
    status = tau_ops.deployment_status(state, now_ms=FakeClock()())
    assert status.health_state == "degraded" and status.rollout_gate == "hold"
    assert gate_classes(console) == {"tau-gate-hold"}
    assert ">degraded<" in console.health_label.value
    assert console.reason_label.value == "health is degraded: " + status.health_reason
    assert (console.rollout_gate, console.rollout_gate_reasons) == ("hold", ["health_degraded"])
    assert console.failure_streak_label.value == "1"
    assert console.reason_codes_label.value == codes_html(status.last_reason_codes)
    assert "case_processing_failed" in status.last_reason_codes
    assert events(state)[0]["retry_attempts"] == 1  # two attempts in all: one retry


def test_runner_settings_reach_the_runner(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fixture = write_fixture(tmp_path, success_case("a"), success_case("b"),
                            retryable_case("c"), name="three")
    clock = FakeClock()
    console = RolloutConsole(state, fixture, clock=clock, sleeper=clock.sleep)
    console.queue_limit.value = 2
    console.processed_case_cap.value = 1
    console.retry_max_attempts.value = 3
    console.retry_base_delay_ms.value = 10
    console.run_button.click()
    assert console.reports[0].reason_codes == ["queue_backpressure_applied",
                                               "cloud_rollout_applied"]
    assert console.queue_depth_label.value == "1"
    state_json = json.loads((state / "state.json").read_text())
    assert len(state_json["processed_case_keys"]) == 1
    console.queue_limit.value = 3
    console.run_button.click()
    assert clock.sleeps == [0.01, 0.02]  # base * 2^(attempt-1) between three attempts


def test_drain_runs_one_cycle_per_queue_sized_chunk_and_advances_the_bar(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, PASS_FIXTURE, clock=FakeClock())
    console.queue_limit.value = 1
    console.drain.value = True
    console.run_button.click()
    assert (console.progress.value, console.progress.max) == (3, 3)
    assert len(console.reports) == 3 and len(events(state)) == 3
    assert tau_ops.deployment_status(state, now_ms=FakeClock()()).rollout_count == 3
    assert console.queue_depth_label.value == "0"
    assert console.cycles_label.value.count("<div>cycle ") == 3


def test_fixture_chunks_follow_the_runner_queue_order() -> None:
    fixture = tau_ops.parse_fixture(json.dumps({"schema_version": 1, "name": "f", "cases": [
        success_case("c"), success_case("a"), success_case("b")]}))
    chunks = fixture_chunks(fixture, 2)
    assert [[c.case_id for c in chunk.cases] for chunk in chunks] == [["a", "b"], ["c"]]
    assert [chunk.name for chunk in chunks] == ["f [1/2]", "f [2/2]"]
    assert fixture_chunks(fixture, 3) == [fixture]


def test_bad_fixture_path_shows_the_error_and_writes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, TESTDATA / "deployment-contract" / "invalid-replicas.json")
    console.run_button.click()
    assert "error: " in console.message.value and "replicas" in console.message.value
    assert console.progress.bar_style == "danger"
    assert not state.exists()
    console.fixture_path.value = ""
    console.run_button.click()
    assert "no fixture chosen" in console.message.value


def test_paused_runner_is_reported_not_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pause_runner(state, reason="incident")
    console = RolloutConsole(state, PASS_FIXTURE)
    console.run_button.click()
    assert "runner is paused" in console.message.value
    assert not (state / "state.json").exists()


def test_uploaded_fixture_replaces_the_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, MIXED_FIXTURE, clock=FakeClock())
    console.fixture_upload.value = ({
        "name": "rollout-pass.json", "type": "application/json",
        "size": PASS_FIXTURE.stat().st_size, "content": memoryview(PASS_FIXTURE.read_bytes()),
        "last_modified": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    },)
    assert console.fixture_path.value == ""
    assert "<b>rollout-pass</b> (3 cases" in console.fixture_info.value
    console.run_button.click()
    assert gate_classes(console) == {"tau-gate-pass"}


def test_package_and_inspect_buttons_record_and_verify_a_deliverable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, wasm_module=WASM / "wasi-p2-core.wasm")
    console.blueprint_id.value = "gateway"
    console.package_button.click()
    report = console.package_report
    assert report is not None and Path(report.manifest_path).is_file()
    assert console.manifest_path.value == report.manifest_path
    assert report.artifact_sha256 in console.wasm_result.value
    entries = json.loads((state / "state.json").read_text())["wasm_deliverables"]
    assert [(e["blueprint_id"], e["runtime_profile"]) for e in entries] == [
        ("gateway", "wasm_wasi")]
    console.inspect_button.click()
    assert console.inspect_report is not None and console.inspect_report.compliant
    assert ">compliant<" in console.wasm_result.value


def test_tampered_artifact_is_shown_as_not_compliant(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, wasm_module=WASM / "wasi-p2-core.wasm")
    console.package_button.click()
    assert console.package_report is not None
    artifact = Path(console.package_report.manifest_path).with_suffix("").with_suffix(".wasm")
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    console.inspect_button.click()
    assert console.inspect_report is not None
    assert "artifact_sha256_mismatch" in console.inspect_report.reason_codes
    assert ">NOT compliant<" in console.wasm_result.value
    assert "artifact_sha256_mismatch" in console.wasm_result.value


def test_non_compliant_module_is_refused_with_reason_codes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    console = RolloutConsole(state, wasm_module=WASM / "wasi-preview1.wasm")
    console.package_button.click()
    assert console.package_report is None
    assert "refused: nothing was written" in console.wasm_result.value
    assert codes_html(["required_abi_missing", "import_module_not_allowlisted",
                       "import_module_forbidden"]) in console.wasm_result.value
    assert not state.exists()


def test_refresh_picks_up_cycles_run_elsewhere(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copy(PASS_FIXTURE, tmp_path / "f.json")
    clock = FakeClock()
    console = RolloutConsole(state, clock=clock)
    tau_ops.run_cycle(tau_ops.load_fixture(tmp_path / "f.json"),
                      tau_ops.RunnerConfig(state_dir=state), clock=clock)
    assert gate_classes(console) == {"tau-gate-hold"}
    console.refresh_button.click()
    assert gate_classes(console) == {"tau-gate-pass"}
