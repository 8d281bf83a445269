"""Fleets against a hostile tester: gateways judged by the fleet's own policy, one gateway
listed twice, a hold whose output cannot be written, and tiny pass fractions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, retryable_case, run_cli, success_case
from test_fleet import _answer, _cycles, _healthy, _http
from test_gateway import gateway

from tau_ops.errors import UsageError
from tau_ops.fleet import (
    FleetMember,
    FleetPolicy,
    expand_members,
    fleet_status,
    fleet_verdict,
)
from tau_ops.gateway.documents import gateway_status
from tau_ops.ops import pause_runner
from tau_ops.status import deployment_status

YEAR_9999_MS = 253_402_214_400_000  # 9999-12-31T00:00:00Z


def _verdicts(report: Any) -> list[tuple[str, str, list[str]]]:
    return [(m.kind, m.rollout_gate, m.rollout_gate_reasons) for m in report.members]


# --- 1. a gateway member is judged by the fleet's own gate decision -------------------------

def test_a_real_gateway_is_held_by_the_fleets_freshness_like_its_state_dir(
        tmp_path: Path) -> None:
    state_dir = _healthy(tmp_path, "iad")
    later = int(time.time() * 1000) + 10_000  # ten seconds after the cycle
    with gateway(state_dir) as gw:
        strict = fleet_status([str(state_dir), gw.url], stale_after_ms=1_000,
                              clock=lambda: later)
        loose = fleet_status([str(state_dir), gw.url], clock=lambda: later)
    assert _verdicts(strict) == [("state_dir", "hold", ["stale_state"]),
                                 ("gateway", "hold", ["stale_state"])]
    assert _verdicts(loose) == [("state_dir", "pass", []), ("gateway", "pass", [])]


def test_the_cli_holds_a_gateway_past_the_fleets_stale_limit(tmp_path: Path) -> None:
    state_dir = _healthy(tmp_path, "iad")
    time.sleep(1.1)
    with gateway(state_dir) as gw:
        result = run_cli("fleet", "gate", "--deployment-stale-after-ms", "1000", gw.url,
                         str(state_dir), "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert [(m["kind"], m["rollout_gate_reasons"]) for m in doc["members"]] == [
        ("gateway", ["stale_state"]), ("state_dir", ["stale_state"])]


def test_the_fleets_clock_skew_tolerance_applies_to_gateways_and_state_dirs(
        tmp_path: Path) -> None:
    state_dir = _healthy(tmp_path, "iad")
    earlier = int(time.time() * 1000) - 600_000  # this clock ten minutes behind the runner's
    with gateway(state_dir) as gw:
        default = fleet_status([str(state_dir), gw.url], clock=lambda: earlier)
        tolerant = fleet_status([str(state_dir), gw.url], clock=lambda: earlier,
                                skew_tolerance_ms=3_600_000)
    assert _verdicts(default) == [("state_dir", "hold", ["clock_skew"]),
                                  ("gateway", "hold", ["clock_skew"])]
    assert _verdicts(tolerant) == [("state_dir", "pass", []), ("gateway", "pass", [])]


def _document(tmp_path: Path) -> tuple[dict[str, Any], int]:
    """A healthy gateway's real /gateway/status document, and when it was made."""
    state_dir = _healthy(tmp_path, "doc")
    now = int(time.time() * 1000)
    report = deployment_status(state_dir, now_ms=now)
    return gateway_status(report, now_ms=now).model_dump(mode="json"), now


def _serve(doc: dict[str, Any], **kwargs: Any) -> Any:
    with _http(_answer(json.dumps(doc).encode())) as (url, _):
        return fleet_status([url], timeout_s=5, **kwargs)


def test_the_unchanged_document_passes(tmp_path: Path) -> None:
    doc, now = _document(tmp_path)
    report = _serve(doc, clock=lambda: now)
    assert (report.fleet_gate, _verdicts(report)) == ("pass", [("gateway", "pass", [])])


def _stale(doc: dict[str, Any]) -> None:
    doc["stale"] = True


def _ancient(doc: dict[str, Any]) -> None:
    doc["state_age_ms"] = 1_000_000_000_000  # 11574 days


def _year_9999(doc: dict[str, Any]) -> None:
    doc["updated_unix_ms"] = doc["deployment"]["health"]["updated_unix_ms"] = YEAR_9999_MS


def _failing_inside(doc: dict[str, Any]) -> None:
    """The summary says pass, the stored health it carries says failing."""
    doc["failure_streak"] = 3
    doc["deployment"]["health"].update(failure_streak=3, last_cycle_failed=1,
                                       last_cycle_completed=0)


def _held_by_its_gateway(doc: dict[str, Any]) -> None:
    doc["rollout_gate"], doc["rollout_gate_reasons"] = "hold", ["stale_state"]


@pytest.mark.parametrize("change,reasons", [
    (_stale, ["stale_state"]),
    (_ancient, ["stale_state"]),
    (_year_9999, ["clock_skew"]),
    (_failing_inside, ["health_failing"]),
    (_held_by_its_gateway, ["stale_state"]),
])
def test_a_document_marked_stale_old_future_or_holding_never_passes(
        tmp_path: Path, change: Any, reasons: list[str]) -> None:
    doc, now = _document(tmp_path)
    change(doc)
    report = _serve(doc, clock=lambda: now)
    assert (report.fleet_gate, _verdicts(report)) == ("hold", [("gateway", "hold", reasons)])


def _failing_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["health_state"] = "failing"


def _held_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["rollout_gate"] = "hold"
    doc["deployment"]["rollout_gate_reasons"] = ["runner_paused"]


@pytest.mark.parametrize("change,reasons", [
    (_failing_deployment, ["health_failing"]),
    (_held_deployment, ["runner_paused"]),
])
def test_a_deployment_section_worse_than_the_summary_holds(
        tmp_path: Path, change: Any, reasons: list[str]) -> None:
    doc, now = _document(tmp_path)
    change(doc)
    report = _serve(doc, clock=lambda: now)
    assert (report.fleet_gate, _verdicts(report)) == ("hold", [("gateway", "hold", reasons)])


def _stale_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["stale"] = True


def _old_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["state_age_ms"] = 10**11


def _strict_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["stale_after_ms"] = 1
    doc["deployment"]["state_age_ms"] = 5


def _skewed_deployment(doc: dict[str, Any]) -> None:
    doc["deployment"]["clock_skew_ms"] = 10**9


@pytest.mark.parametrize("change,reasons", [
    (_stale_deployment, ["stale_state"]),
    (_old_deployment, ["stale_state"]),
    (_strict_deployment, ["stale_state"]),
    (_skewed_deployment, ["clock_skew"]),
])
def test_a_deployment_section_that_says_stale_or_skewed_holds(
        tmp_path: Path, change: Any, reasons: list[str]) -> None:
    doc, now = _document(tmp_path)
    change(doc)
    report = _serve(doc, clock=lambda: now)
    assert (report.fleet_gate, _verdicts(report)) == ("hold", [("gateway", "hold", reasons)])


def _no_state_behind_a_pass(doc: dict[str, Any]) -> None:
    doc["deployment"]["state_exists"] = False


def _pause_without_paused(doc: dict[str, Any]) -> None:
    doc["deployment"]["pause"] = {"paused_unix_ms": 1, "paused_by": "x", "reason": "y"}


def _unknown_code(doc: dict[str, Any]) -> None:
    doc["deployment"]["last_reason_codes"] = ["not_a_code"]


def _held_without_reasons(doc: dict[str, Any]) -> None:
    doc["deployment"]["rollout_gate"] = "hold"
    doc["deployment"]["rollout_gate_reasons"] = []


@pytest.mark.parametrize("change", [
    _no_state_behind_a_pass, _pause_without_paused, _unknown_code, _held_without_reasons])
def test_a_deployment_section_contradicting_the_summary_is_unreadable(
        tmp_path: Path, change: Any) -> None:
    doc, now = _document(tmp_path)
    change(doc)
    report = _serve(doc, clock=lambda: now)
    assert (report.fleet_gate, _verdicts(report)) == (
        "hold", [("gateway", "hold", ["member_unreadable"])])


def _future_on_top_only(doc: dict[str, Any]) -> None:
    doc["updated_unix_ms"] = YEAR_9999_MS


def _paused_on_top_only(doc: dict[str, Any]) -> None:
    doc["deployment"]["runner_paused"] = True


def _no_deployment(doc: dict[str, Any]) -> None:
    del doc["deployment"]


def _unknown_reason(doc: dict[str, Any]) -> None:
    doc["rollout_gate"], doc["rollout_gate_reasons"] = "hold", ["moon_phase"]


@pytest.mark.parametrize("change,error", [
    (_future_on_top_only, "updated_unix_ms"),
    (_paused_on_top_only, "runner_paused"),
    (_no_deployment, "deployment"),
    (_unknown_reason, "moon_phase"),
])
def test_a_document_that_contradicts_its_own_deployment_is_unreadable(
        tmp_path: Path, change: Any, error: str) -> None:
    doc, now = _document(tmp_path)
    change(doc)
    report = _serve(doc, clock=lambda: now)
    assert _verdicts(report) == [("gateway", "hold", ["member_unreadable"])]
    assert error in report.members[0].error


def test_a_paused_gateway_holds_with_runner_paused(tmp_path: Path) -> None:
    doc, now = _document(tmp_path)
    doc["runner_paused"] = doc["deployment"]["runner_paused"] = True
    doc["rollout_gate"], doc["rollout_gate_reasons"] = "hold", ["runner_paused"]
    report = _serve(doc, clock=lambda: now)
    assert _verdicts(report) == [("gateway", "hold", ["runner_paused"])]


def test_a_gateway_with_no_cycle_or_a_corrupt_state_is_judged_like_its_state_dir(
        tmp_path: Path) -> None:
    empty = tmp_path / "empty" / "deployment"
    empty.mkdir(parents=True)
    corrupt = _healthy(tmp_path, "corrupt")
    (corrupt / "state.json").write_text("{not json")
    pause_runner(corrupt, reason="incident 7")
    with gateway(empty) as gw_empty, gateway(corrupt) as gw_corrupt:
        report = fleet_status([str(empty), gw_empty.url, str(corrupt), gw_corrupt.url])
    assert _verdicts(report) == [
        ("state_dir", "hold", ["no_cycle"]), ("gateway", "hold", ["no_cycle"]),
        ("state_dir", "hold", ["invalid_state", "runner_paused"]),
        ("gateway", "hold", ["invalid_state", "runner_paused"])]
    assert [m.readable for m in report.members] == [True] * 4


# --- 2. one gateway is one member however its URL is written -------------------------------

@pytest.mark.parametrize("other", [
    "http://127.0.0.1:8811/gateway/status",
    "http://127.0.0.1:8811/",
    "http://127.0.0.1:8811/gateway/status/",
    "http://127.0.0.1:8811/gateway/status?x=1",
    "http://127.0.0.1:8811#top",
    "HTTP://127.0.0.1:8811",
    "region=iad@http://127.0.0.1:8811/./gateway/status",
    "http://127.0.0.1:8811/gateway/%73tatus",
    "http://127.0.0.1:8811/%67ateway/status",
    "http://127.1:8811",
    "http://0x7f000001:8811",
    "http://2130706433:8811",
    "http://[::ffff:127.0.0.1]:8811",
])
def test_one_gateway_written_two_ways_is_refused(other: str) -> None:
    with pytest.raises(UsageError, match="list each member once"):
        expand_members(["http://127.0.0.1:8811", other])


@pytest.mark.parametrize("first,other", [
    ("http://GW.Example", "http://gw.example:80/gateway/status"),
    ("https://gw.example:443/", "https://gw.example"),
    ("http://[::1]:8811", "http://[::1]:8811/gateway/status"),
])
def test_host_case_and_default_ports_are_one_gateway(first: str, other: str) -> None:
    with pytest.raises(UsageError, match="list each member once"):
        expand_members([first, other])


def test_different_ports_schemes_and_paths_are_different_gateways() -> None:
    specs = expand_members(["http://127.0.0.1:8811", "http://127.0.0.1:8812",
                            "https://127.0.0.1:8811", "http://localhost:8811",
                            "http://127.0.0.1:8811/team-b/gateway/status"])
    assert len(specs) == 5


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://:8811/",
                                 "http://127.0.0.1:port/"])
def test_a_malformed_gateway_url_is_bad_usage(url: str) -> None:
    result = run_cli("fleet", "gate", url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_the_cli_refuses_a_gateway_listed_twice_with_exit_2() -> None:
    result = run_cli("fleet", "gate", "--min-pass-fraction", "0.5", "http://127.0.0.1:9",
                     "http://127.0.0.1:9/gateway/status?x=1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: fleet member 'http://127.0.0.1:9/gateway/status?x=1' is "
                             "the same as 'http://127.0.0.1:9': list each member once\n")


def test_the_status_path_is_what_is_fetched_without_query_or_fragment(tmp_path: Path) -> None:
    doc, now = _document(tmp_path)
    paths: list[str] = []

    def status_only(handler: Any) -> None:
        paths.append(handler.path)
        ok = handler.path == "/gateway/status"
        _answer(json.dumps(doc).encode() if ok else b"{}", 200 if ok else 404)(  # type: ignore[operator]
            handler)

    with _http(status_only) as (url, _):
        report = fleet_status([url + "/?x=1#frag"], clock=lambda: now)
    assert (_verdicts(report), paths) == ([("gateway", "pass", [])], ["/gateway/status"])


# --- 3. the exit code is the verdict's even when stdout is closed --------------------------

def _closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    """Run tau-ops with stdout a pipe whose reading end is closed before it writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    try:
        return subprocess.run([sys.executable, "-m", "tau_ops", *args], cwd=REPO, env=env,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_a_held_fleet_exits_1_when_stdout_is_closed(tmp_path: Path) -> None:
    held = _cycles(tmp_path / "syd" / "deployment", success_case("api"), retryable_case("x"))
    passing = _healthy(tmp_path, "iad")
    results = {
        "fleet gate hold": _closed_stdout("fleet", "gate", str(held)),
        "fleet gate hold json": _closed_stdout("fleet", "gate", str(held), "--json"),
        "fleet gate pass": _closed_stdout("fleet", "gate", str(passing)),
        "gate hold": _closed_stdout("gate", "--deployment-state-dir", str(held)),
        "gate pass": _closed_stdout("gate", "--deployment-state-dir", str(passing)),
    }
    assert {name: (r.returncode, r.stderr) for name, r in results.items()} == {
        "fleet gate hold": (1, ""), "fleet gate hold json": (1, ""),
        "fleet gate pass": (0, ""), "gate hold": (1, ""), "gate pass": (0, ""),
    }


def test_a_large_output_into_a_closed_pipe_keeps_the_exit_code(tmp_path: Path) -> None:
    held = [str(_cycles(tmp_path / f"m{i:02d}" / "deployment", success_case("api"),
                        retryable_case("x"))) for i in range(40)]
    result = _closed_stdout("fleet", "gate", *held, "--json")  # far more than one buffer
    assert (result.returncode, result.stderr) == (1, "")


def _to(stdout: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tau_ops", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def test_no_stdout_or_a_full_disk_keeps_the_verdicts_exit_code(tmp_path: Path) -> None:
    held = _cycles(tmp_path / "syd" / "deployment", success_case("api"), retryable_case("x"))
    passing = _healthy(tmp_path, "iad")
    with open("/dev/full", "w", encoding="utf-8") as full:
        results = {
            # stdout=None would inherit ours: close it in the child instead (``>&-``)
            "gate hold, no stdout": subprocess.run(
                [sys.executable, "-c", "import os, sys; os.close(1); sys.stdout = None; "
                 "from tau_ops.cli import main; sys.exit(main(sys.argv[1:]))",
                 "gate", "--deployment-state-dir", str(held)],
                stderr=subprocess.PIPE, text=True, timeout=120),
            "fleet gate hold, full disk": _to(full, "fleet", "gate", str(held)),
            "fleet gate pass, full disk": _to(full, "fleet", "gate", str(passing)),
        }
    full_disk = "error: cannot write the output: No space left on device\n"
    assert {name: (r.returncode, r.stderr) for name, r in results.items()} == {
        "gate hold, no stdout": (1, ""),
        "fleet gate hold, full disk": (1, full_disk),
        "fleet gate pass, full disk": (0, full_disk),
    }


def test_bad_usage_into_a_closed_pipe_still_exits_2() -> None:
    result = _closed_stdout("fleet", "gate", "--max-workers", "100", ".")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


# --- 4. the pass fraction is compared exactly ----------------------------------------------

def _rows(passing: int, holding: int) -> list[FleetMember]:
    def row(gate: str) -> FleetMember:
        return FleetMember(name="m", kind="state_dir", labels={}, readable=True,
                           rollout_gate=gate,  # type: ignore[arg-type]
                           rollout_gate_reasons=[] if gate == "pass" else ["health_degraded"])
    return [row("pass")] * passing + [row("hold")] * holding


@pytest.mark.parametrize("fraction,passing,holding,gate", [
    (1e-10, 0, 1, "hold"),
    (1e-10, 1, 0, "pass"),
    (1e-10, 1, 999, "pass"),
    (0.6, 3, 2, "pass"),
    (0.6, 2, 3, "hold"),
    (0.07, 7, 93, "pass"),
    (0.070000001, 7, 93, "hold"),
    (0.0, 0, 3, "pass"),
    (0.999, 999, 1, "pass"),
    (0.9990000001, 999, 1, "hold"),
])
def test_the_pass_fraction_is_compared_exactly(fraction: float, passing: int, holding: int,
                                               gate: str) -> None:
    assert fleet_verdict(_rows(passing, holding),
                         FleetPolicy(min_pass_fraction=fraction))[0] == gate


def test_a_tiny_fraction_holds_a_fleet_with_nothing_passing(tmp_path: Path) -> None:
    held = _cycles(tmp_path / "syd" / "deployment", success_case("api"), retryable_case("x"))
    result = run_cli("fleet", "gate", "--min-pass-fraction", "1e-10", str(held))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "fleet gate: rollout_gate=hold members=1 pass=0 reasons=members_below_pass_fraction",
        "  hold: 0 of 1 member pass; the policy needs 1 (min_pass_fraction 1e-10)"]


@pytest.mark.parametrize("text", ["1e-400", "0.333333333333333333333333333334",
                                  "0.66666666666666667", "1.0000000000000001", "nan", "-0.1"])
def test_a_fraction_a_float_would_change_is_refused(tmp_path: Path, text: str) -> None:
    held = _cycles(tmp_path / "syd" / "deployment", success_case("api"), retryable_case("x"))
    result = run_cli("fleet", "gate", "--min-pass-fraction", text, str(held))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("error: argument --min-pass-fraction: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_an_events_log_that_is_not_a_file_holds_the_member_as_gate_refuses_it(
        tmp_path: Path, kind: str) -> None:
    state_dir = _healthy(tmp_path, "iad")
    events = state_dir / "runtime-events.jsonl"
    events.unlink()
    if kind == "fifo":
        os.mkfifo(events)
    else:
        events.mkdir()
    gate = run_cli("gate", "--deployment-state-dir", str(state_dir))
    fleet = run_cli("fleet", "gate", str(state_dir))
    assert gate.returncode == 2, gate.stdout
    assert fleet.returncode == 1, fleet.stdout
    assert "member_unreadable" in fleet.stdout.splitlines()[0]


def test_the_hold_line_shows_the_fraction_as_given(tmp_path: Path) -> None:
    held = _cycles(tmp_path / "syd" / "deployment", success_case("api"), retryable_case("x"))
    result = run_cli("fleet", "gate", "--min-pass-fraction", "0.0700000000000001", str(held))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[1] == (
        "  hold: 0 of 1 member pass; the policy needs 1 (min_pass_fraction 0.0700000000000001)")


@pytest.mark.parametrize("value", ["1e-400", "0.070000000000000000001", "\u0660.\u0665", "0.5_0",
                                   True])
def test_the_python_policy_refuses_what_a_float_would_change(value: object) -> None:
    from decimal import Decimal

    from pydantic import ValidationError

    from tau_ops.fleet import FleetPolicy

    given = Decimal(value) if value == "0.070000000000000000001" else value
    with pytest.raises(ValidationError, match="min_pass_fraction"):
        FleetPolicy(min_pass_fraction=given)
