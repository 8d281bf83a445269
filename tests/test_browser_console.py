"""The rollout console in a real browser: JupyterLab on loopback, driven by headless Chromium.

The lab (``tests/_lab.py``) runs in a throwaway root that mirrors the
repository, so nothing the browser or an autosave does can touch the checkout
or the home folder. The screenshot goes to ``test-artifacts/`` (git-ignored); with
``TAU_UPDATE_SCREENSHOTS=1`` it also refreshes ``docs/images/rollout-console.png``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lab import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    UPDATE_SCREENSHOTS,
    Lab,
    chromium_path,
    notebook_with,
    run_all_cells,
    running_lab,
)
from builders import REPO

NOTEBOOK = "01-deployment-runbook.ipynb"
DOCS_SCREENSHOT = REPO / "docs" / "images" / "rollout-console.png"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path, {NOTEBOOK: notebook_with(NOTEBOOK)}) as running:
        yield running


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
            run_all_cells(page, lab, NOTEBOOK, ready=".tau-rollout-console")

            console = page.locator(".tau-rollout-console")
            expect(console.locator(".tau-gate-hold")).to_be_visible()
            expect(console.locator(".tau-gate-pass")).to_have_count(0)
            # No cycle yet: the health badge says so, never a green "healthy" beside the hold.
            expect(console.locator(".tau-health")).to_have_text("no cycle yet")
            run_button = console.locator("button.tau-run-cycle")
            expect(run_button).to_have_text("Run cycle")
            run_button.click()
            expect(console.locator(".tau-gate-pass")).to_be_visible()
            expect(console.locator(".tau-gate-pass")).to_have_text("pass")
            expect(console.locator(".tau-health")).to_have_text("healthy")
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
    if UPDATE_SCREENSHOTS:
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
