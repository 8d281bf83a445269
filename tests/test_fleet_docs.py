"""The fleet guide's commands run as written, in order."""

from __future__ import annotations

import json
from pathlib import Path

from builders import REPO, run_guide


def test_fleet_guide_commands_run(tmp_path: Path) -> None:
    results = run_guide(REPO / "docs/guides/fleet.md", tmp_path, timeout=180)
    assert len(results) == 6
    status = results[1].stdout.splitlines()
    assert status[0] == "fleet gate: rollout_gate=hold members=3 pass=2 reasons=member_held"
    assert status[1] == "  hold: fleet/syd/deployment holds: health_degraded"
    assert results[2].stdout.splitlines()[0].startswith("fleet gate: rollout_gate=pass")
    assert results[2].stdout.splitlines()[-1] == "pass 2"
    mixed = json.loads((tmp_path / "mixed.json").read_text())
    assert [m["kind"] for m in mixed["members"]] == ["snapshot", "state_dir"]
    assert json.loads((tmp_path / "fleet.json").read_text())["fleet_gate_reasons"] == []
    assert "reason_code" in results[5].stdout
