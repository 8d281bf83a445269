"""Every surface shows one rollout-gate verdict with the same reasons (issue 11, SPEC section 4).

Random state dirs mix a pause, a clock offset (stale, fresh, from the future),
impossible counters and every health state; transport health, deployment
status, ``gate``, ``diagnose``, the report summary, the gateway's JSON and the
rollout console must all say the same, and say what an independent reading of
SPEC section 4 expects.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import event_line, run_cli, success_case, write_fixture
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tau_ops import StateError, deployment_status, transport_health
from tau_ops.analysis.report import write_report
from tau_ops.gateway import create_app
from tau_ops.health import ACTIONS, DEFAULT_CLOCK_SKEW_TOLERANCE_MS
from tau_ops.ops import diagnose, pause_runner, promotion_gate
from tau_ops.widgets import RolloutConsole

NOW = 1_796_000_000_000  # 2026-11-29T...
DAY = 24 * 3600 * 1000
YEAR = 365 * DAY
CORRUPTIONS = ("none", "negative_streak", "negative_failed", "processed_mismatch",
               "malformed_over_completed", "streak_without_failures")


@dataclass
class Scenario:
    """One state dir to build: health counters, when the cycle was, pause, corruption."""

    has_cycle: bool
    applied: int
    malformed: int
    failed: int
    duplicates: int
    backlog: int
    retries: int
    streak: int
    offset_ms: int  # updated_unix_ms - NOW
    paused: bool
    stale_after_ms: int
    corruption: str
    uncommitted_tail: bool = False  # a killed writer's appended, never-committed cycle

    def health(self) -> dict[str, int]:
        if not self.has_cycle:
            values = dict.fromkeys(_KEYS, 0)
        else:
            completed = self.applied + self.malformed
            processed = completed + self.failed + self.duplicates
            values = {
                "updated_unix_ms": NOW + self.offset_ms, "cycle_duration_ms": 3,
                "queue_depth": self.backlog, "active_runs": 0,
                "failure_streak": self.streak if self.failed else 0,
                "last_cycle_discovered": processed + self.backlog,
                "last_cycle_processed": processed, "last_cycle_completed": completed,
                "last_cycle_failed": self.failed, "last_cycle_duplicates": self.duplicates,
                "last_cycle_malformed": self.malformed, "last_cycle_retries": self.retries,
            }
        change = {
            "none": {},
            "negative_streak": {"failure_streak": -3},
            "negative_failed": {"last_cycle_failed": -1},
            "processed_mismatch": {"last_cycle_processed": values["last_cycle_processed"] + 1,
                                   "last_cycle_discovered": values["last_cycle_discovered"] + 1},
            "malformed_over_completed": {
                "last_cycle_malformed": values["last_cycle_completed"] + 1},
            "streak_without_failures": {"failure_streak": 2, "last_cycle_failed": 0,
                                        "last_cycle_processed": values["last_cycle_completed"]
                                        + values["last_cycle_duplicates"],
                                        "last_cycle_discovered": values["last_cycle_completed"]
                                        + values["last_cycle_duplicates"]
                                        + values["queue_depth"]},
        }[self.corruption]
        return {**values, **change}

    def expected(self) -> list[str]:
        """SPEC section 4, read independently of tau_ops.health."""
        reasons: list[str] = []
        invalid = self.corruption != "none"
        if invalid:
            reasons.append("invalid_state")
        elif not self.has_cycle:
            reasons.append("no_cycle")
        if self.paused:
            reasons.append("runner_paused")
        if invalid or not self.has_cycle:
            return reasons
        if self.offset_ms > DEFAULT_CLOCK_SKEW_TOLERANCE_MS:
            reasons.append("clock_skew")
        elif -self.offset_ms > self.stale_after_ms:
            reasons.append("stale_state")
        streak = self.streak if self.failed else 0
        if streak >= 3:
            reasons.append("health_failing")
        elif streak or self.failed or self.malformed or self.retries:
            reasons.append("health_degraded")
        return reasons


_KEYS = ("updated_unix_ms", "cycle_duration_ms", "queue_depth", "active_runs", "failure_streak",
         "last_cycle_discovered", "last_cycle_processed", "last_cycle_completed",
         "last_cycle_failed", "last_cycle_duplicates", "last_cycle_malformed",
         "last_cycle_retries")

small = st.integers(min_value=0, max_value=3)
scenarios = st.builds(
    Scenario,
    has_cycle=st.booleans(),
    applied=small, malformed=small, failed=small, duplicates=small, backlog=small,
    retries=small, streak=st.integers(min_value=1, max_value=5),
    offset_ms=st.one_of(
        st.integers(min_value=-2 * YEAR, max_value=2 * YEAR),
        st.integers(min_value=-2 * DAY, max_value=2 * DEFAULT_CLOCK_SKEW_TOLERANCE_MS),
        st.sampled_from([-DAY, -DAY - 1, DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
                         DEFAULT_CLOCK_SKEW_TOLERANCE_MS + 1, YEAR])),
    paused=st.booleans(),
    stale_after_ms=st.sampled_from([DAY, 3_600_000]),
    corruption=st.sampled_from(CORRUPTIONS),
    uncommitted_tail=st.booleans(),
)


def build(root: Path, scenario: Scenario) -> Path:
    state = root / "state"
    shutil.rmtree(root, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "state.json").write_text(json.dumps({
        "schema_version": 1, "processed_case_keys": [], "rollouts": [],
        "health": scenario.health(), "wasm_deliverables": []}, indent=2))
    if scenario.paused:
        pause_runner(state, reason="change freeze", clock=lambda: NOW - 60_000)
    if scenario.uncommitted_tail:
        events = state / "runtime-events.jsonl"
        committed = event_line(NOW - 1000, "healthy", ["cloud_rollout_applied"]) + "\n"
        events.write_text(committed)
        (state / ".cycle-journal.json").write_text(json.dumps({
            "state_sha256": "0" * 64, "rewrites": {},
            "append_sizes": {"runtime-events.jsonl": len(committed.encode())}}))
        with open(events, "a") as handle:
            handle.write(event_line(NOW, "degraded", ["case_processing_failed"]) + "\n")
    return state


GATEWAY_PATHS = ("/gateway/status", "/deployment/status", "/transport/health")


async def get_all(app: Any) -> list[httpx.Response]:
    """GET every status path through the ASGI app in process (starlette 1.x's TestClient
    transport, without its deprecated httpx shim)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return [await client.get(path) for path in GATEWAY_PATHS]


def surfaces(root: Path, state: Path, scenario: Scenario) -> dict[str, Any]:
    """(gate, reasons) from every surface; a reader's refusal shows as ``StateError``."""
    opts: dict[str, Any] = {"now_ms": NOW, "stale_after_ms": scenario.stale_after_ms}
    seen: dict[str, Any] = {}
    for name, read in (("transport_health", transport_health),
                       ("deployment_status", deployment_status), ("diagnose", diagnose)):
        try:
            doc = read(state, **opts)
            seen[name] = (doc.rollout_gate, doc.rollout_gate_reasons)
        except StateError:
            seen[name] = "StateError"
            continue
        if name == "deployment_status":  # readers see only committed cycles
            seen["status counts only committed cycles"] = (
                doc.cycle_reports == (1 if scenario.uncommitted_tail else 0)
                and "case_processing_failed" not in doc.last_reason_codes)
    gate = promotion_gate(state_dir=state, evidence_root=root / "evidence",
                          stale_after_ms=scenario.stale_after_ms, clock=lambda: NOW)
    seen["gate"] = (gate.verdict, gate.rollout_gate_reasons)
    report = write_report(state, root / "report", **opts)
    seen["report"] = (report.rollout_gate, report.rollout_gate_reasons)
    assert report.summary.startswith(f"rollout_gate={report.rollout_gate} ")
    if report.rollout_gate == "hold":
        assert report.recommendation != ACTIONS["healthy"]
        assert "promotion can continue" not in (root / "report/report.html").read_text()
    app = create_app(state_dir=state, stale_after_ms=scenario.stale_after_ms, clock=lambda: NOW)
    for path, response in zip(GATEWAY_PATHS, asyncio.run(get_all(app)), strict=True):
        body = response.json()
        row = body[0] if isinstance(body, list) else body
        seen[f"gateway {path} {response.status_code}"] = (
            row["rollout_gate"], row["rollout_gate_reasons"])
    console = RolloutConsole(state, clock=lambda: NOW)
    seen["console"] = (console.rollout_gate, console.rollout_gate_reasons)
    badge = console.health_label.value
    seen["console badge is green healthy"] = ">healthy<" in badge and console.rollout_gate == "hold"
    return seen


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
@example(Scenario(True, 1, 0, 3, 0, 0, 3, 4, -2 * YEAR, True, DAY, "none"))  # paused, stale
@example(Scenario(True, 1, 1, 0, 0, 0, 0, 1, YEAR, False, DAY, "none"))  # future, degraded
@example(Scenario(True, 1, 0, 0, 0, 0, 0, 1, -1000, True, DAY, "processed_mismatch"))
@example(Scenario(False, 0, 0, 0, 0, 0, 0, 1, 0, True, DAY, "none"))  # paused, no cycle
@example(Scenario(True, 2, 0, 0, 1, 2, 0, 1, -DAY, False, DAY, "none"))  # exactly at the limit
@example(Scenario(True, 1, 0, 0, 0, 0, 0, 1, -1000, False, DAY, "none", True))  # killed writer
def test_every_surface_shows_the_same_verdict_and_reasons(tmp_path: Path,
                                                          scenario: Scenario) -> None:
    root = tmp_path / "case"
    state = build(root, scenario)
    reasons = scenario.expected()
    verdict = ("hold" if reasons else "pass", reasons)
    reader = "StateError" if "invalid_state" in reasons else verdict
    status = 503 if "invalid_state" in reasons else 200
    assert surfaces(root, state, scenario) == {
        "transport_health": reader, "deployment_status": reader, "diagnose": reader,
        "gate": verdict, "report": verdict,
        f"gateway /gateway/status {status}": verdict,
        f"gateway /deployment/status {status}": verdict,
        f"gateway /transport/health {status}": verdict,
        "console": verdict, "console badge is green healthy": False,
        **({} if reader == "StateError" else {"status counts only committed cycles": True}),
    }


# --- the cases of issue 11, as an operator meets them on the command line ----------------

def test_paused_runner_holds_gate_inspect_and_says_who_when_why(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fixture = write_fixture(tmp_path, success_case("a"))
    assert run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                   "--deployment-fixture", fixture).returncode == 0
    paused = run_cli("runner", "pause", "--deployment-state-dir", state,
                     "--reason", "change freeze")
    assert paused.returncode == 0, paused.stderr
    gate = run_cli("gate", "--deployment-state-dir", state, "--evidence-dir", tmp_path / "ev",
                   "--json")
    status = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                     "--deployment-status-json")
    text = run_cli("--deployment-state-dir", state, "--transport-health-inspect", "deployment")
    assert gate.returncode == 1
    assert json.loads(gate.stdout)["rollout_gate_reasons"] == ["runner_paused"]
    doc = json.loads(status.stdout)
    assert (doc["rollout_gate"], doc["rollout_gate_reasons"], doc["pause"]["reason"]) == (
        "hold", ["runner_paused"], "change freeze")
    assert doc["pause"]["paused_by"] and doc["pause"]["paused_utc"].endswith("Z")
    assert doc["recommendation"] == ACTIONS["runner_paused"]
    lines = text.stdout.splitlines()
    assert lines[1] == ("rollout gate: rollout_gate=hold rollout_gate_reasons=runner_paused "
                        "health_state=healthy stale=false runner_paused=true")
    assert lines[3].startswith(f"paused: by={doc['pause']['paused_by']} at=")
    assert lines[3].endswith(" reason=change freeze")


def test_state_from_the_future_holds_beyond_the_tolerance_flag_or_env(tmp_path: Path) -> None:
    state = build(tmp_path / "case", Scenario(
        has_cycle=True, applied=1, malformed=0, failed=0, duplicates=0, backlog=0, retries=0,
        streak=1, offset_ms=YEAR, paused=False, stale_after_ms=DAY, corruption="none"))
    out = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                  "--deployment-status-json")
    doc = json.loads(out.stdout)
    assert (doc["rollout_gate_reasons"], doc["state_age_ms"], doc["stale"]) == (
        ["clock_skew"], 0, False)
    wide = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                   "--deployment-status-json",
                   env={"TAU_DEPLOYMENT_CLOCK_SKEW_TOLERANCE_MS": str(366 * DAY)})
    assert json.loads(wide.stdout)["rollout_gate_reasons"] == []
    flag = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                   "--deployment-status-json", "--deployment-clock-skew-tolerance-ms",
                   str(366 * DAY), env={"TAU_DEPLOYMENT_CLOCK_SKEW_TOLERANCE_MS": "0"})
    assert json.loads(flag.stdout)["rollout_gate"] == "pass"


def test_impossible_values_are_refused_by_inspect_commands(tmp_path: Path) -> None:
    state = build(tmp_path / "case", Scenario(
        has_cycle=True, applied=1, malformed=0, failed=1, duplicates=0, backlog=0, retries=0,
        streak=1, offset_ms=-1000, paused=False, stale_after_ms=DAY,
        corruption="negative_streak"))
    for args in (["--transport-health-inspect", "deployment"], ["--deployment-status-inspect"],
                 ["diagnose"]):
        flags = ["--deployment-state-dir", str(state)]
        out = run_cli(*(args[:1] + flags + args[1:]) if args == ["diagnose"] else
                      (flags + args))
        assert (out.returncode, out.stdout) == (2, ""), args
        assert out.stderr == (f"error: state file {state / 'state.json'} has impossible health "
                              "values: failure_streak=-3 is negative\n")


def test_stale_state_report_never_says_promotion_can_continue(tmp_path: Path) -> None:
    state = build(tmp_path / "case", Scenario(
        has_cycle=True, applied=1, malformed=0, failed=0, duplicates=0, backlog=0, retries=0,
        streak=1, offset_ms=-330 * DAY, paused=False, stale_after_ms=DAY, corruption="none"))
    out = run_cli("report", "--deployment-state-dir", state, "--output", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2] == f"recommendation: {ACTIONS['stale']}"
    assert "rollout_gate=hold rollout_gate_reasons=stale_state: state is stale: last cycle " \
        "at " in out.stdout
    assert "11 months ago (limit 1 day)" in out.stdout


@pytest.mark.parametrize(
    ("scenario", "badge"),
    [
        (Scenario(False, 0, 0, 0, 0, 0, 0, 1, 0, False, DAY, "none"), ">no cycle yet<"),
        (Scenario(True, 1, 0, 0, 0, 0, 0, 1, -2 * DAY, False, DAY, "none"), ">stale<"),
        (Scenario(True, 1, 0, 0, 0, 0, 0, 1, -1000, True, DAY, "none"), ">runner paused<"),
        (Scenario(True, 1, 0, 0, 0, 0, 0, 1, YEAR, False, DAY, "none"), ">clock skew<"),
        (Scenario(True, 1, 0, 0, 0, 0, 0, 1, -1000, False, DAY, "negative_failed"),
         ">invalid state<"),
        (Scenario(True, 1, 0, 1, 0, 0, 0, 1, -2 * DAY, True, DAY, "none"), ">degraded<"),
        (Scenario(True, 1, 0, 0, 0, 0, 0, 1, -1000, False, DAY, "none"), ">healthy<"),
    ],
)
def test_console_badge_names_the_hold(tmp_path: Path, scenario: Scenario, badge: str) -> None:
    console = RolloutConsole(build(tmp_path / "case", scenario), clock=lambda: NOW)
    assert badge in console.health_label.value
    assert console.rollout_gate_reasons == scenario.expected()
