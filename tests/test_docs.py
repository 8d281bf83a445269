"""Docs that run: the guides' bash blocks and the README's Python example execute."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders import REPO, guide_blocks, run_guide

# wasm.md and gateway.md run in their own tests, which also check what they print.
GUIDES = ["docs/guides/deployment-ops.md"]


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_commands_run(tmp_path: Path, guide: str) -> None:
    results = run_guide(REPO / guide, tmp_path)
    assert len(results) >= 10


def test_every_guide_with_bash_blocks_is_run_by_a_test() -> None:
    covered = {*GUIDES, "docs/guides/wasm.md", "docs/guides/gateway.md",
               "docs/guides/fleet.md",  # test_fleet_docs
               "docs/guides/browser-did.md",  # test_identity_cli runs each DID command
               "docs/guides/monitoring.md"}  # run by test_promtool
    with_blocks = {str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")
                   if guide_blocks(p)}
    assert with_blocks <= covered


def test_readme_python_example_runs(tmp_path: Path) -> None:
    (block,) = guide_blocks(REPO / "README.md", "python")
    shutil.copytree(REPO / "testdata", tmp_path / "testdata")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    codes, health = result.stdout.splitlines()[0].rsplit("] ", 1)
    assert "case_processing_failed" in codes and health == "degraded"
    assert result.stdout.splitlines()[1] == "hold"
