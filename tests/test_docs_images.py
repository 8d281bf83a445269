"""``scripts/docs_images.py`` renders the guides' chart images from the current charts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from builders import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_docs_images_script_writes_the_three_analysis_charts(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "docs_images.py"),
                           "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    names = ["analysis-reason-code-trends.png", "analysis-health-timeline.png",
             "analysis-failure-streak-queue-depth.png"]
    assert done.stdout.splitlines() == [str(tmp_path / name) for name in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert all((REPO / "docs" / "images" / name).is_file() for name in names)
