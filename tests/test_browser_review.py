"""Notebook 02 (incident review) in a real browser: JupyterLab on loopback, headless Chromium.

Two copies of the notebook are served (``tests/_lab.py``), each given a
state dir as a parameter: one with the docs' demo incident history
(``scripts/docs_images.py``: healthy, an outage that reaches ``failing`` with
queue backpressure, recovery; three blueprints with channel-store logs) and
one with exactly one cycle. Both start on
2026-01-01 00:00 UTC, where a 12-hour clock shows ``12:..`` and Vega's
default axis shows the bare year. Each is run with "Run All Cells", and the
rendered charts (the notebook's SVG outputs and the review widget's tabs) and
the widget's layout are checked as drawn. Screenshots go to the test's
temporary folder; with ``TAU_UPDATE_SCREENSHOTS=1`` the several-cycle review
also refreshes ``docs/images/incident-review.png``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _lab import (
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    UPDATE_SCREENSHOTS,
    Lab,
    notebook_with,
    running_lab,
    start_all_cells,
    wait_for_output,
)
from builders import REPO, TESTDATA

import tau_ops
from tau_ops import analysis
from tau_ops.clock import FakeClock
from tau_ops.models import REASON_CODES
from tau_ops.widgets.review import MAX_ROWS

NOTEBOOK = "02-incident-review.ipynb"
MIDNIGHT_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
STEP_MS = 10 * 60_000
DOCS_SCREENSHOT = REPO / "docs" / "images" / "incident-review.png"
CHART_COUNT = 3


def _docs_images() -> Any:
    """``scripts/docs_images.py``, which writes the demo incident history of the docs images."""
    spec = importlib.util.spec_from_file_location("docs_images", REPO / "scripts" /
                                                  "docs_images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_cycle(state: Path) -> None:
    """One degraded cycle at 00:40 UTC carrying every problem code the fixture gives."""
    mixed = tau_ops.load_fixture(TESTDATA / "deployment-contract" / "mixed-outcomes.json")
    clock = FakeClock(MIDNIGHT_MS + 4 * STEP_MS)
    tau_ops.run_cycle(mixed, tau_ops.RunnerConfig(state_dir=state, queue_limit=4), clock=clock,
                      sleeper=clock.sleep)


@dataclass(frozen=True)
class History:
    notebook: str
    state: Path
    codes: list[str]  # reason codes present, in SPEC order
    blueprints: list[str]
    first_log_rows: int  # the review's channel-log rows for the first blueprint


def _history(tmp: Path, name: str, build: Any) -> History:
    state = tmp / name
    build(state)
    events = analysis.load_events(state, cache=False)
    present = set(events.select("reason_codes").explode("reason_codes")
                  .get_column("reason_codes").cast(str).to_list())
    blueprints = sorted(set(analysis.load_channel_log(state).get_column("blueprint_id")))
    rows = min(MAX_ROWS, analysis.load_channel_log(state, blueprints[0]).height)
    return History(f"02-{name}.ipynb", state,
                   [c for c in REASON_CODES if c in present], blueprints, rows)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Lab, History, History]]:
    several = _history(tmp_path, "several", _docs_images().incident_history)
    one = _history(tmp_path, "one", one_cycle)
    notebooks = {h.notebook: notebook_with(NOTEBOOK, state_dir=str(h.state))
                 for h in (several, one)}
    with running_lab(tmp_path / "lab", notebooks) as lab:
        yield lab, several, one


# Facts of one chart's SVG as drawn: its title, every text, the x axes' first label lines
# and the number of data marks drawn.
CHART_FACTS = """svg => {
  const lines = t => t.querySelector('tspan')
      ? [...t.querySelectorAll('tspan')].map(s => s.textContent.trim()) : [t.textContent.trim()];
  const texts = [...svg.querySelectorAll('text')].flatMap(lines);
  const xLabels = [...svg.querySelectorAll('g.role-axis')]
      .filter(g => (g.getAttribute('aria-label') || '').startsWith('X-axis'))
      .flatMap(g => [...g.querySelectorAll('.role-axis-label text')].map(t => lines(t)[0]));
  const marks = [...svg.querySelectorAll('g.role-mark > path, g.role-mark > rect,'
      + ' g.role-mark > line')].filter(e => (e.getAttribute('d') || 'x') !== 'M0,0h0v0h0Z');
  const title = svg.querySelector('.role-title-text text');
  return {title: title ? title.textContent : '', texts, xLabels, marks: marks.length};
}"""

NOTEBOOK_CHARTS = f"""() => [...document.querySelectorAll('.jp-RenderedSVG img')].map(img => {{
  const source = decodeURIComponent(img.src.slice(img.src.indexOf(',') + 1));
  const svg = new DOMParser().parseFromString(source, 'image/svg+xml').documentElement;
  return ({CHART_FACTS})(svg);
}})"""

# A drawn element is cut off when its text is wider than its box or it pokes out of its
# container; measured only while shown.
CUT_OFF = """([selector, container]) => {
  const box = document.querySelector(container).getBoundingClientRect();
  return [...document.querySelectorAll(selector)].filter(e => e.offsetParent !== null)
    .map(e => { const r = e.getBoundingClientRect(); return {
      text: e.textContent.trim(), lines: e.getClientRects().length,
      clipped: e.scrollWidth > e.clientWidth && getComputedStyle(e).display !== 'inline',
      outside: r.left < box.left - 0.5 || r.right > box.right + 0.5}; });
}"""

# Shown texts of the review (chart labels, table cells, labels) drawn beyond the review's
# right edge, where the notebook column cuts them off.
CUT_AT_THE_EDGE = """root => {
  const column = root.closest('.jp-OutputArea-output') || root;
  const edge = Math.min(root.getBoundingClientRect().right,
                        column.getBoundingClientRect().right) + 0.5;
  return [...root.querySelectorAll('text, td, th, label, .widget-html-content span')]
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > edge; })
    .map(e => e.textContent.slice(0, 80)); }"""


def check_chart(facts: dict[str, Any], history: History, where: str) -> None:
    """One drawn chart: marks drawn, 24-hour times of the history's first hours, whole labels."""
    assert facts["marks"] > 0, (where, facts["title"])
    labels = facts["xLabels"]
    assert labels, (where, facts["title"])
    assert not re.fullmatch(r"\d{4}", labels[0]), (where, labels)  # no bare year first
    # The histories lie between 00:00 and 01:30 UTC: a 12-hour clock would show 12:xx.
    assert all(re.fullmatch(r"0[01]:[0-5]\d", label) for label in labels), (where, labels)
    texts = facts["texts"]
    assert not [t for t in texts if t.endswith("…") or re.search(r"\d ?[AP]M$", t)], where
    if facts["title"].startswith("Cycles reporting each reason code"):
        drawn = [t for t in texts if t in REASON_CODES]
        assert drawn == history.codes, where  # whole, only present, in SPEC order


def check_review(page: Any, history: History, shots: Path) -> None:
    """The review widget as drawn: every chart tab, the channel log, uncut labels."""
    from playwright.sync_api import expect

    review = page.locator(".tau-incident-review")
    review.scroll_into_view_if_needed()
    tabs = review.locator(".lm-TabBar-tab")
    expect(tabs).to_have_count(CHART_COUNT)
    for index in range(CHART_COUNT):
        tabs.nth(index).click()
        svg = review.locator("svg.marks").nth(index)
        expect(svg).to_be_visible()
        check_chart(svg.evaluate(CHART_FACTS), history, f"review tab {index}")
        assert review.evaluate(CUT_AT_THE_EDGE) == [], f"review tab {index}"
    # The channel-store log of the first blueprint, shown without a choice being made.
    expect(review.locator("select").last).to_have_value(history.blueprints[0])
    expect(review).not_to_contain_text("no channel-store log yet")
    log = review.locator("table").last
    expect(log.locator("th").first).to_have_text("timestamp (UTC)")
    expect(log.locator("tbody tr")).to_have_count(history.first_log_rows)
    # Control labels and the range readout whole, on one line, inside the review.
    labels = page.evaluate(CUT_OFF, [".tau-incident-review .widget-label",
                                     ".tau-incident-review"])
    assert "Reason codes" in [label["text"] for label in labels]
    assert [label for label in labels if label["clipped"] or label["outside"]] == []
    [readout] = page.evaluate(CUT_OFF, [".tau-incident-review .tau-range",
                                        ".tau-incident-review"])
    assert (readout["lines"], readout["outside"]) == (1, False), readout
    assert readout["text"].endswith("UTC") and readout["text"].startswith("2026-01-01 00:")
    tabs.nth(1).click()  # the health tab: the shortest whole view of the review
    review.screenshot(path=str(shots / f"{history.state.name}-review.png"))


@pytest.mark.browser
def test_incident_review_notebook_draws_readable_charts_in_jupyterlab(
        served: tuple[Lab, History, History], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    lab, several, one = served
    expect.set_options(timeout=UI_TIMEOUT_MS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    assert "queue_backpressure_applied" in several.codes and len(several.blueprints) == 3
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=lab.chromium, args=CHROMIUM_ARGS,
                                     timeout=UI_TIMEOUT_MS)
        pages = {h.notebook: browser.new_page(viewport={"width": 1280, "height": 2400})
                 for h in (several, one)}
        page = pages[several.notebook]
        try:
            for history in (several, one):  # both notebooks run at once, in their own kernels
                page = pages[history.notebook]
                page.set_default_timeout(UI_TIMEOUT_MS)
                start_all_cells(page, lab, history.notebook)
            for history in (several, one):
                page = pages[history.notebook]
                wait_for_output(page, ".tau-incident-review")
                expect(page.locator(".jp-RenderedSVG img")).to_have_count(CHART_COUNT)
                charts = page.evaluate(NOTEBOOK_CHARTS)
                for index, facts in enumerate(charts):
                    check_chart(facts, history, f"{history.notebook} output {index}")
                check_review(page, history, shots)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))
            (shots / "failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    for history in (several, one):
        assert (shots / f"{history.state.name}-review.png").stat().st_size > 10_000
    if UPDATE_SCREENSHOTS:
        shutil.copy(shots / "several-review.png", DOCS_SCREENSHOT)
