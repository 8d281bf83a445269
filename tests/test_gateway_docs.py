"""The gateway guide runs: its bash block starts the real gateway, queries it, stops it."""

from __future__ import annotations

from pathlib import Path

from builders import REPO, guide_blocks, run_guide

GUIDE = REPO / "docs/guides/gateway.md"


def test_gateway_guide_commands_run(tmp_path: Path) -> None:
    assert len(guide_blocks(GUIDE)) == 1
    (result,) = run_guide(GUIDE, tmp_path, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deployment runner summary: discovered=3")
    assert '"rollout_gate":"pass"' in lines[2]
    assert lines[3:] == ["401", 'tau_rollout_gate{gate="pass"} 1.0',
                         'tau_rollout_gate{gate="hold"} 0.0']
    log = (tmp_path / "gateway.log").read_text()
    assert "status=401" in log and "local-demo-token" not in log
