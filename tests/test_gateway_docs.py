"""The gateway guide runs: its bash block starts the real gateway, queries it, stops it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from builders import REPO

GUIDE = REPO / "docs/guides/gateway.md"


def test_gateway_guide_commands_run(tmp_path: Path) -> None:
    blocks = re.findall(r"^```bash\n(.*?)^```", GUIDE.read_text(), re.S | re.M)
    assert len(blocks) == 1
    shutil.copytree(REPO / "testdata", tmp_path / "testdata")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    proc = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + blocks[0]], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:  # a failed step must not leave the backgrounded gateway running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deployment runner summary: discovered=3")
    assert '"rollout_gate":"pass"' in lines[2]
    assert lines[3:] == ["401", 'tau_rollout_gate{gate="pass"} 1',
                         'tau_rollout_gate{gate="hold"} 0']
    log = (tmp_path / "gateway.log").read_text()
    assert "status=401" in log and "local-demo-token" not in log
