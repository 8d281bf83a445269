"""The WASM guide runs: every bash block of docs/guides/wasm.md executes, in order."""

from __future__ import annotations

from pathlib import Path

from builders import REPO, guide_blocks, run_guide

GUIDE = REPO / "docs" / "guides" / "wasm.md"


def test_wasm_guide_commands_run(tmp_path: Path) -> None:
    assert len(guide_blocks(GUIDE)) == 5
    run_guide(GUIDE, tmp_path)
    state = (tmp_path / ".tau/deployment/state.json").read_text()
    assert '"channel-automation-wasm"' in state and '"edge-wasm"' in state
