"""The built wheel works outside the checkout: demo, gate, report and gateway from an empty folder.

The wheel is built offline (``pip wheel --no-build-isolation``, hatchling from
the dev extra) and installed without dependencies into a fresh venv; the
dependencies come from the project's own environment through a ``.pth`` line,
so the test needs no network and installs nothing twice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path

import pytest
from builders import REPO, TESTDATA

from tau_ops._data import data_path
from tau_ops.analysis._vega import BUNDLES


def test_packaged_demo_inputs_equal_the_test_data() -> None:
    for packaged, source in [
        ("edge-runtime.wasm", TESTDATA / "deployment-wasm" / "edge-runtime.wasm"),
        ("rollout-pass.json", TESTDATA / "deployment-contract" / "rollout-pass.json"),
    ]:
        assert data_path(packaged).read_bytes() == source.read_bytes(), packaged


def _run(*args: str | os.PathLike[str], cwd: Path, env: dict[str, str],
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding only the built wheel (dependencies via a .pth line)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAU_", "PYTHON"))}
    env["PIP_NO_INDEX"] = "1"  # offline: fail rather than download
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-q", "-w", root / "dist", REPO, cwd=root, env=env)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("tau_ops-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {"tau_ops/_data/edge-runtime.wasm", "tau_ops/_data/rollout-pass.json",
            "tau_ops/py.typed", "tau_ops/analysis/vendor/manifest.json",
            *(f"tau_ops/analysis/vendor/{b.file}" for b in BUNDLES),
            *(f"tau_ops/analysis/vendor/{b.licence}" for b in BUNDLES)} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "testdata/"))]
    venv = root / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root, env=env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                     cwd=root, env=env).stdout.strip())
    # Dependencies from the project's environment, after the venv's own site-packages.
    (site / "zz_tau_ops_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                   "-q", wheel, cwd=root, env=env)
    assert install.returncode == 0, install.stderr
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return venv, env


@pytest.mark.slow
def test_the_installed_wheel_runs_the_demo_gate_report_and_gateway_anywhere(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    venv, env = installed
    empty = tmp_path / "anywhere"
    empty.mkdir()
    where = _run(venv / "bin" / "python", "-c", "import tau_ops; print(tau_ops.__file__)",
                 cwd=empty, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    demo = _run("tau-ops", "demo", cwd=empty, env=env)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.rstrip().endswith("deployment demo: rollout_gate=pass health_state=healthy")
    assert f"--deployment-wasm-package-module {venv}" in demo.stdout  # the packaged module

    state = ".tau/demo-deployment"
    gate = _run("tau-ops", "gate", "--deployment-state-dir", state, "--json", cwd=empty, env=env)
    assert gate.returncode == 0, gate.stderr
    assert json.loads(gate.stdout)["verdict"] == "pass"

    report = _run("tau-ops", "report", "--deployment-state-dir", state, "--output", "report",
                  cwd=empty, env=env)
    assert report.returncode == 0, report.stderr
    page = (empty / "report" / "report.html").read_text(encoding="utf-8")
    assert all(f"/* {b.package} {b.version} " in page for b in BUNDLES)  # bundles from the wheel

    with subprocess.Popen(
            ["tau-ops", "gateway", "serve", "--deployment-state-dir", state,
             "--gateway-openresponses-bind", "127.0.0.1:0"],
            cwd=empty, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            match = re.search(r"url=(http://127\.0\.0\.1:\d+/gateway/status)", line)
            assert match, f"no listening line: {line!r}"
            with urllib.request.urlopen(match.group(1), timeout=30) as response:  # noqa: S310
                status = json.loads(response.read())
            assert (response.status, status["rollout_gate"]) == (200, "pass")
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert sorted(p.name for p in empty.iterdir()) == [".tau", "report"]
