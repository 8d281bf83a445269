"""The fleet view widget shows the same verdict as tau_ops.fleet_status, and refreshes."""

from __future__ import annotations

from pathlib import Path

from builders import retryable_case, success_case, write_fixture

import tau_ops
from tau_ops.contract import load_fixture
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.widgets import FleetView


def _cycle(state_dir: Path, *cases: dict[str, object]) -> None:
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    path = write_fixture(state_dir.parent, *cases, name=f"fx-{state_dir.parent.name}")
    run_cycle(load_fixture(path), RunnerConfig(state_dir=state_dir))


def test_view_shows_the_fleet_verdict_members_and_refreshes(tmp_path: Path) -> None:
    iad, syd = tmp_path / "iad" / "deployment", tmp_path / "syd" / "deployment"
    _cycle(iad, success_case("api"))
    _cycle(syd, success_case("api"))
    view = FleetView([str(tmp_path / "*" / "deployment")])
    assert view.report is not None and view.report.fleet_gate == "pass"
    assert "tau-gate-pass" in view.gate._dom_classes
    assert "2 of 2 members pass" in view.summary.value
    assert str(iad) in view.table.value and ">pass<" in view.table.value

    _cycle(syd, success_case("api2"), retryable_case("flaky"))
    view.refresh_button.click()
    assert view.report.fleet_gate == "hold"
    assert "tau-gate-hold" in view.gate._dom_classes
    assert "<code>health_degraded</code>" in view.table.value
    assert f"{syd} holds: health_degraded" in view.reasons.value
    same = tau_ops.fleet_status([str(tmp_path / "*" / "deployment")])
    assert [m.rollout_gate_reasons for m in same.members] == [
        m.rollout_gate_reasons for m in view.report.members]


def test_bad_member_list_is_shown_not_raised(tmp_path: Path) -> None:
    view = FleetView([str(tmp_path)])
    view.members = [str(tmp_path / "nothing-*")]
    view.refresh_button.click()
    assert "matches nothing" in view.message.value
