"""Docs that run: every bash block of the guides executes, in order, in a scratch folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders import REPO

RUNNABLE_GUIDES = ["docs/guides/deployment-ops.md"]


def bash_blocks(text: str) -> list[str]:
    return [block for block in re.findall(r"^ *```bash\n(.*?)^ *```", text, re.S | re.M)]


@pytest.mark.parametrize("guide", RUNNABLE_GUIDES)
def test_guide_commands_run(tmp_path: Path, guide: str) -> None:
    blocks = bash_blocks((REPO / guide).read_text())
    assert blocks, f"{guide} has no bash blocks"
    shutil.copytree(REPO / "testdata", tmp_path / "testdata")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    for number, block in enumerate(blocks, start=1):
        script = "set -euo pipefail\n" + "\n".join(line.strip() if line.strip().startswith(
            "tau-ops") else line for line in block.splitlines())
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"block {number}:\n{block}\n{result.stderr}"
        assert "Traceback" not in result.stderr
