"""The rollout console in a real browser: JupyterLab on loopback, driven by headless Chromium.

The server runs in a throwaway root that mirrors the repository (symlinks to
``tau_ops``, ``testdata`` and ``pyproject.toml``, a copy of the notebook), with
its config, data, runtime and settings folders under ``tmp_path``, so nothing
the browser or an autosave does can touch the checkout or the home folder.
The screenshot goes to ``test-artifacts/`` (git-ignored); with
``TAU_UPDATE_SCREENSHOTS=1`` it also refreshes ``docs/images/rollout-console.png``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from builders import REPO

NOTEBOOK = "01-deployment-runbook.ipynb"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SERVER_START_TIMEOUT_S = 60
UI_TIMEOUT_MS = 20_000
ARTIFACTS = Path(os.environ.get("TAU_TEST_ARTIFACTS_DIR", REPO / "test-artifacts"))
DOCS_SCREENSHOT = REPO / "docs" / "images" / "rollout-console.png"

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
    for module, extra in (("playwright", "playwright"), ("jupyterlab", "jupyterlab")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]' installs {extra})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mirror_repo(root: Path) -> None:
    """A root that looks like the checkout to the notebook, holding a copy of the notebook."""
    for name in ("pyproject.toml", "tau_ops", "testdata"):
        (root / name).symlink_to(REPO / name)
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)


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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_modules()
    chromium = chromium_path()
    root = tmp_path / "root"
    root.mkdir()
    mirror_repo(root)
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


@pytest.mark.browser
def test_run_cycle_button_turns_the_gate_to_pass_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "rollout-console.png"
    for stale in (shot, ARTIFACTS / "rollout-console-failure.png",
                  ARTIFACTS / "rollout-console-failure.html"):
        stale.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=lab.chromium, args=CHROMIUM_ARGS,
                                     timeout=UI_TIMEOUT_MS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(f"{lab.url}/lab/tree/notebooks/{NOTEBOOK}?token={lab.token}")
            page.locator(".jp-Notebook").first.wait_for()
            # Run All before the kernel is connected asks for a kernel: wait for "Idle" first,
            # and still accept the kernel dialog if the session was slower than the status bar.
            expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible()
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            dialog = page.locator(".jp-Dialog")
            page.locator(".tau-rollout-console, .jp-Dialog").first.wait_for()
            if dialog.count():
                dialog.locator("button.jp-mod-accept").click()

            console = page.locator(".tau-rollout-console")
            expect(console.locator(".tau-gate-hold")).to_be_visible()
            expect(console.locator(".tau-gate-pass")).to_have_count(0)
            run_button = console.locator("button.tau-run-cycle")
            expect(run_button).to_have_text("Run cycle")
            run_button.click()
            expect(console.locator(".tau-gate-pass")).to_be_visible()
            expect(console.locator(".tau-gate-pass")).to_have_text("pass")
            expect(console).to_contain_text("wasm_rollout_applied")
            expect(console).to_contain_text("ran 1 cycle(s) of rollout-pass: health healthy")
            console.scroll_into_view_if_needed()
            console.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "rollout-console-failure.png"), full_page=True)
            (ARTIFACTS / "rollout-console-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("TAU_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS_SCREENSHOT)


REPORT_CODES = ["queue_backpressure_applied", "retryable_failures_observed",
                "case_processing_failed"]


def _one_cycle_report(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    line = {"timestamp_unix_ms": 1_699_999_200_000 + 40 * 60_000, "health_state": "degraded",
            "health_reason": "degraded cycle", "reason_codes": REPORT_CODES,
            "failed_cases": 1, "failure_streak": 1, "backlog_cases": 4}
    (state / "runtime-events.jsonl").write_text(json.dumps(line) + "\n")
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "tau_ops", "report", "--deployment-state-dir",
                           str(state), "--output", str(out), "--every", "15m"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return out / "report.html"


def test_report_charts_in_chromium_draw_one_cycle_with_24_hour_axes(tmp_path: Path) -> None:
    """The report page offline in Chromium: the inlined Vega draws every chart, labels are
    24-hour and whole, nothing is fetched; the screenshot stays in the test's temp dir."""
    import re

    chromium = chromium_path()
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed")
    from playwright.sync_api import sync_playwright

    page_path = _one_cycle_report(tmp_path)
    fetched: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.set_default_timeout(UI_TIMEOUT_MS)

            def refuse(route: Any) -> None:  # offline: anything but the file itself fails
                fetched.append(route.request.url)
                route.abort()

            page.route(re.compile(r"^(?!file:).*"), refuse)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(page_path.as_uri())
            figures = page.locator("figure")
            assert figures.count() == 3
            page.wait_for_function(
                "() => [...document.querySelectorAll('figure')].every(f =>"
                " f.querySelector('svg [role=\"graphics-symbol\"]'))")
            texts = [t.strip() for t in page.evaluate(
                "() => [...document.querySelectorAll('figure svg text')].flatMap(t =>"
                " t.querySelector('tspan') ? [...t.querySelectorAll('tspan')]"
                ".map(s => s.textContent) : [t.textContent])")]
            times = [t for t in texts if re.fullmatch(r"\d\d:\d\d", t)]
            assert times and all(0 <= int(t[:2]) <= 23 for t in times)
            assert "22:30" in times  # the 15m bucket of the 22:40 cycle, 24-hour UTC
            assert "2023-11-14" in texts  # the date under the first tick
            assert not any(re.search(r"\d ?[AP]M$", t) for t in texts)
            for code in REPORT_CODES:  # facet labels in full
                assert code in texts
            assert "cloud_rollout_applied" not in texts  # only codes present
            assert {"healthy", "degraded", "failing"} <= set(texts)  # legend entries whole
            assert {"cycles", "peak cycles", "peak cases", "time (UTC)"} <= set(texts)
            assert "15m buckets, UTC; y: cycles" in texts
            for index in range(3):
                marks = figures.nth(index).locator('svg [role="graphics-symbol"]')
                assert marks.count() >= 1, index
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert fetched == [] and problems == []
