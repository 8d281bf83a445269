"""The WASM guide runs: every bash block of docs/guides/wasm.md executes, in order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from builders import REPO

GUIDE = REPO / "docs" / "guides" / "wasm.md"


def test_wasm_guide_commands_run(tmp_path: Path) -> None:
    blocks = re.findall(r"^```bash\n(.*?)^```", GUIDE.read_text(), re.S | re.M)
    assert len(blocks) == 5
    shutil.copytree(REPO / "testdata", tmp_path / "testdata")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    for number, block in enumerate(blocks, start=1):
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"block {number}:\n{block}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
    state = (tmp_path / ".tau/deployment/state.json").read_text()
    assert '"channel-automation-wasm"' in state and '"edge-wasm"' in state
