"""A real JupyterLab on loopback and headless Chromium, shared by the browser tests.

The server runs in a throwaway root that mirrors the repository (symlinks to
``tau_ops``, ``testdata`` and ``pyproject.toml``, copies of the notebooks under
test), with its config, data, runtime and settings folders under the test's
temporary folder, so nothing the browser or an autosave does can touch the
checkout or the home folder. The server and its kernels run in their own
process group and are always stopped, escalating to SIGKILL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from builders import REPO

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SERVER_START_TIMEOUT_S = 60
UI_TIMEOUT_MS = 20_000
RUN_TIMEOUT_MS = 120_000
"""Longest wait for a notebook's cells to run (kernel start, imports, charts) on a loaded CI."""
ARTIFACTS = Path(os.environ.get("TAU_TEST_ARTIFACTS_DIR", REPO / "test-artifacts"))
UPDATE_SCREENSHOTS = os.environ.get("TAU_UPDATE_SCREENSHOTS") == "1"
"""With ``TAU_UPDATE_SCREENSHOTS=1`` the browser tests refresh ``docs/images/``."""

# Settings of a fresh lab: no autosave (nothing is ever written back), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def chromium_path() -> str:
    """Debian's chromium (or ``TAU_CHROMIUM``); skip with the reason when there is none."""
    wanted = os.environ.get("TAU_CHROMIUM")
    candidates = (wanted,) if wanted else CHROMIUM_CANDIDATES
    found = next((c for c in candidates if os.access(c, os.X_OK)), None)
    if found is None:
        pytest.skip(f"chromium is not installed at {' or '.join(candidates)} "
                    "(apt-get install chromium; .ci/run does this in CI)")
    return found


def require_modules() -> None:
    """Skip with the reason when playwright or jupyterlab is not installed."""
    for module, extra in (("playwright", "playwright"), ("jupyterlab", "jupyterlab")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]' installs {extra})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notebook_with(name: str, **parameters: object) -> str:
    """A repository notebook's text with a cell setting ``parameters`` after its parameters
    cell (papermill style); unchanged without parameters."""
    notebook = json.loads((REPO / "notebooks" / name).read_text())
    if parameters:
        cells = notebook["cells"]
        at = next(i for i, c in enumerate(cells)
                  if "parameters" in c.get("metadata", {}).get("tags", []))
        cells.insert(at + 1, {
            "cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"tags": ["injected-parameters"]},
            "source": "\n".join(f"{k} = {v!r}" for k, v in parameters.items())})
    return json.dumps(notebook, indent=1)


def mirror_repo(root: Path, notebooks: Mapping[str, str]) -> None:
    """A root that looks like the checkout to a notebook, holding ``notebooks`` (name: text)."""
    for name in ("pyproject.toml", "tau_ops", "testdata"):
        (root / name).symlink_to(REPO / name)
    (root / "notebooks").mkdir()
    for name, text in notebooks.items():
        (root / "notebooks" / name).write_text(text)


def jupyter_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAU_", "JUPYTER"))}
    folders = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
               "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
               "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython",
               "HOME": "home"}
    for var, name in folders.items():
        (tmp / name).mkdir()
        env[var] = str(tmp / name)
    for file, values in LAB_SETTINGS.items():
        path = tmp / "settings" / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    kernel = tmp / "data" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    return env


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    log: Path
    chromium: str


def wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S}s:\n"
                f"{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its kernels (its own process group), escalating to SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_lab(tmp_path: Path, notebooks: Mapping[str, str]) -> Iterator[Lab]:
    """JupyterLab on a free loopback port serving ``notebooks`` (name: text); skips with the
    reason when chromium, playwright or jupyterlab is missing."""
    require_modules()
    chromium = chromium_path()
    root = tmp_path / "root"
    root.mkdir(parents=True)
    mirror_repo(root, notebooks)
    env = jupyter_env(tmp_path)
    token = secrets.token_hex(16)
    port = free_port()
    log = tmp_path / "jupyter.log"
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_root=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class"
            "=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(proc, f"{url}/api/status?token={token}", log)
        yield Lab(url=url, token=token, log=log, chromium=chromium)
    finally:
        stop(proc)


def start_all_cells(page: Any, lab: Lab, notebook: str) -> None:
    """Open ``notebook`` in ``page`` and start "Run All Cells" (returns while it runs).

    Each notebook gets its own lab workspace, so pages open at once do not share tabs.
    """
    from playwright.sync_api import expect

    workspace = Path(notebook).stem
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/notebooks/{notebook}"
              f"?token={lab.token}")
    page.locator(".jp-Notebook").first.wait_for()
    # Run All before the kernel is connected asks for a kernel: wait for "Idle" first.
    expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible(
        timeout=RUN_TIMEOUT_MS)  # a kernel starting on a loaded machine
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def wait_for_output(page: Any, ready: str) -> None:
    """Wait for ``ready`` (a selector), accepting the kernel dialog if the session was slower
    than the status bar."""
    dialog = page.locator(".jp-Dialog")
    page.locator(f"{ready}, .jp-Dialog").first.wait_for(timeout=RUN_TIMEOUT_MS)
    if dialog.count():
        dialog.locator("button.jp-mod-accept").click()
        page.locator(ready).first.wait_for(timeout=RUN_TIMEOUT_MS)


def run_all_cells(page: Any, lab: Lab, notebook: str, ready: str) -> None:
    """Open ``notebook`` in ``page``, run all its cells, and wait for ``ready`` (a selector)."""
    start_all_cells(page, lab, notebook)
    wait_for_output(page, ready)
