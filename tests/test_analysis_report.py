"""Charts are valid Vega-Lite over the right data; ``tau-ops report`` writes HTML (and images)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import event_line, run_cli, write_event_log

from tau_ops.analysis import (
    auto_every,
    health_timeline_chart,
    health_timeline_spec,
    load_events,
    reason_code_trend_chart,
    reason_code_trend_spec,
    streak_backlog_chart,
    streak_backlog_spec,
)
from tau_ops.health import ACTIONS

T0 = 1_699_999_200_000  # 2023-11-14 22:00:00 UTC
MIN = 60_000


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    write_event_log(
        folder / "runtime-events.jsonl",
        event_line(T0, reason_codes=["cloud_rollout_applied"]),
        event_line(T0 + 10 * MIN, "degraded", ["retry_attempted"], retry_attempts=1,
                   backlog_cases=3),
        event_line(T0 + 70 * MIN, "failing", ["case_processing_failed"], failed_cases=2,
                   failure_streak=3),
        "not json",
    )
    return folder


def _data(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec["data"]["values"])


def _utc(ms: int) -> str:
    """Epoch milliseconds (how the specs hold times) as a readable UTC minute."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def _x_axis_is_24h_utc(x: dict[str, Any]) -> None:
    assert x["scale"] == {"type": "utc"} and x["title"] == "time (UTC)"
    expr = x["axis"]["labelExpr"]
    assert "utcFormat(datum.value, '%H:%M')" in expr and "%Y-%m-%d" in expr
    assert "%I" not in expr and "%p" not in expr
    assert x["axis"]["labelOverlap"] == "greedy"


def _subtitle(spec: dict[str, Any]) -> str:
    return str(spec["title"]["subtitle"])


def test_reason_code_chart_has_one_row_per_code_present_with_bucket_wide_bars(
    state_dir: Path,
) -> None:
    spec = reason_code_trend_spec(load_events(state_dir), every="1h")
    inner = spec["spec"]
    assert inner["mark"]["type"] == "bar"
    _x_axis_is_24h_utc(inner["encoding"]["x"])
    assert inner["encoding"]["x2"] == {"field": "bucket_end"}
    y = inner["encoding"]["y"]
    assert (y["field"], y["axis"]["title"], y["axis"]["format"]) == ("cycles", "cycles", "d")
    assert all(isinstance(v, int) for v in y["axis"]["values"])
    row = spec["facet"]["row"]
    assert row["sort"] == ["retry_attempted", "case_processing_failed", "cloud_rollout_applied"]
    assert row["header"]["labelLimit"] == 0  # full code names
    assert _subtitle(spec) == "1h buckets, UTC; y: cycles"
    assert [(_utc(r["bucket"]), _utc(r["bucket_end"]), r["reason_code"], r["cycles"])
            for r in _data(spec)] == [
        ("2023-11-14T22:00", "2023-11-14T23:00", "retry_attempted", 1),
        ("2023-11-14T22:00", "2023-11-14T23:00", "cloud_rollout_applied", 1),
        ("2023-11-14T23:00", "2023-11-15T00:00", "case_processing_failed", 1),
    ]


def test_one_cycle_with_six_codes_counts_one_cycle_per_code(tmp_path: Path) -> None:
    codes = ["queue_backpressure_applied", "duplicate_cases_skipped",
             "malformed_inputs_observed", "retry_attempted", "retryable_failures_observed",
             "case_processing_failed"]
    write_event_log(tmp_path / "runtime-events.jsonl",
                    event_line(T0, "degraded", codes, failed_cases=1, failure_streak=1))
    spec = reason_code_trend_spec(load_events(tmp_path), every="15m")
    assert spec["facet"]["row"]["sort"] == codes
    assert {r["cycles"] for r in _data(spec)} == {1}
    assert spec["spec"]["encoding"]["y"]["axis"]["values"] == [0, 1]


def test_health_chart_shows_discrete_states_per_bucket_and_incident_bands(
    state_dir: Path,
) -> None:
    spec = health_timeline_spec(load_events(state_dir), every="1h")
    bars, bands = spec["layer"]
    assert bars["mark"]["type"] == "rect" and bands["mark"]["type"] == "rect"
    _x_axis_is_24h_utc(bars["encoding"]["x"])
    assert (bars["encoding"]["y"]["field"], bars["encoding"]["y2"]["field"]) == ("top", "bottom")
    assert bars["encoding"]["y"]["axis"]["title"] == "cycles"
    assert (bands["encoding"]["x"]["field"], bands["encoding"]["x2"]["field"]) == ("start", "end")
    assert [(_utc(r["start"]), _utc(r["end"]), r["worst_state"], r["incidents"])
            for r in _data(bands)] == [("2023-11-14T22:00", "2023-11-15T00:00", "failing", 1)]
    assert [(_utc(r["bucket"])[11:], r["health_state"], r["bottom"], r["top"])
            for r in _data(bars)] == [
        ("22:00", "healthy", 0, 1), ("22:00", "degraded", 1, 2), ("23:00", "failing", 0, 1)]
    assert _subtitle(spec) == "1h buckets, UTC; y: cycles"


def test_streak_and_backlog_have_separate_axes_with_units(state_dir: Path) -> None:
    spec = streak_backlog_spec(load_events(state_dir), every="1h")
    streak, backlog = spec["vconcat"]
    axes = [panel["layer"][1]["encoding"]["y"] for panel in (streak, backlog)]
    assert [(y["field"], y["axis"]["title"]) for y in axes] == [
        ("streak", "peak cycles"), ("backlog", "peak cases")]
    _x_axis_is_24h_utc(streak["layer"][1]["encoding"]["x"])
    assert [(_utc(r["bucket"])[11:], r["streak"], r["backlog"]) for r in _data(spec)] == [
        ("22:00", 0, 3), ("23:00", 3, 0)]
    assert _subtitle(spec) == "1h buckets, UTC; streak in cycles, queue depth in cases"


CHARTS = [(reason_code_trend_spec, reason_code_trend_chart, "FacetChart"),
          (health_timeline_spec, health_timeline_chart, "LayerChart"),
          (streak_backlog_spec, streak_backlog_chart, "VConcatChart")]


@pytest.mark.parametrize("spec_of,chart_of,kind", CHARTS)
def test_notebook_charts_are_the_specs_validated_by_altair(
    state_dir: Path, spec_of: Any, chart_of: Any, kind: str
) -> None:
    import altair as alt

    events = load_events(state_dir)
    spec = spec_of(events, every="1h")
    assert spec["$schema"] == alt.SCHEMA_URL  # the bundled Vega-Lite is altair's version
    chart = chart_of(events, every="1h")
    assert type(chart).__name__ == kind
    made = chart.to_dict()  # validates against altair's Vega-Lite schema
    datasets = made.pop("datasets", {})
    made.pop("config")

    def inline(node: Any) -> Any:  # altair moves inline data to named datasets
        if isinstance(node, dict):
            if set(node) == {"name"} and node["name"] in datasets:
                return {"values": datasets[node["name"]]}
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    assert inline(made) == spec


@pytest.mark.parametrize("spec_of", [c[0] for c in CHARTS])
def test_every_chart_draws_a_one_cycle_history(tmp_path: Path, spec_of: Any) -> None:
    from tau_ops.analysis import chart_svg

    write_event_log(tmp_path / "runtime-events.jsonl",
                    event_line(T0 + 40 * MIN, "degraded", ["retry_attempted"], retry_attempts=1))
    svg = chart_svg(spec_of(load_events(tmp_path), every="15m"))
    assert svg.count('role="graphics-symbol"') >= 1  # at least one mark drawn
    assert ">22:30<" in svg  # 24-hour UTC labels, the bucket of 22:40
    assert re.search(r">[^<]*\d ?[AP]M<", svg) is None


def test_auto_every_keeps_charts_to_a_few_hundred_buckets() -> None:
    ts = pl.Series([0, 30 * 24 * 3600 * 1000]).cast(pl.Datetime("ms", "UTC"))
    assert auto_every(pl.DataFrame({"timestamp": ts})) == "6h"
    assert auto_every(pl.DataFrame({"timestamp": ts.head(1)})) == "1h"


class _Page(HTMLParser):
    """The report page's external references, inline scripts and embedded chart specs."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self.specs: dict[str, Any] = {}
        self._figure = ""
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "figure":
            self._figure = found["id"] or ""
        if tag == "script":
            self._script = found

    def handle_data(self, data: str) -> None:
        if self._script is None:
            return
        if self._script.get("class") == "tau-chart":
            self.specs[self._figure] = json.loads(data)
        else:
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def _page(path: Path) -> _Page:
    parsed = _Page()
    parsed.feed(path.read_text(encoding="utf-8"))
    return parsed


NAMES = ["reason-code-trends", "health-timeline", "failure-streak-queue-depth"]


def test_report_page_embeds_the_chart_specs_and_the_bundled_vega(
    state_dir: Path, tmp_path: Path
) -> None:
    from tau_ops.analysis._vega import BUNDLES

    out = tmp_path / "report"
    result = run_cli("report", "--deployment-state-dir", state_dir, "--output", out, "--json",
                     "--every", "1h")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["image_paths"] == []  # images are opt-in
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    assert (report["cycles"], report["invalid_lines"], report["incidents"]) == (3, 1, 1)
    page = _page(out / "report.html")
    assert page.links == []  # nothing loaded from elsewhere: the page works offline
    events = load_events(state_dir)
    assert page.specs == {
        "reason-code-trends": reason_code_trend_spec(events, every="1h"),
        "health-timeline": health_timeline_spec(events, every="1h"),
        "failure-streak-queue-depth": streak_backlog_spec(events, every="1h"),
    }
    bundled = [f"/* {b.package} {b.version} (BSD-3-Clause) */" for b in BUNDLES]
    assert [s.splitlines()[0] for s in page.scripts[:3]] == bundled
    assert "vegaEmbed(" in page.scripts[3]
    text = (out / "report.html").read_text()
    assert report["summary"] in text.replace("&#x27;", "'")
    assert "treat as rollout gate failure" in text


def test_a_spec_cannot_end_its_script_element(tmp_path: Path) -> None:
    from tau_ops.analysis.report import _figure

    spec = {"title": "</script><script>alert(1)</script> <!-- & -->", "data": {"values": []}}
    (tmp_path / "page.html").write_text(_figure("chart", spec))
    page = _page(tmp_path / "page.html")
    assert page.specs == {"chart": spec} and page.scripts == []


@pytest.mark.parametrize("flag,fmt,magic", [("--image-format", "svg", b"<svg"),
                                            ("--format", "png", b"\x89PNG")])
def test_report_writes_image_files_when_asked(
    state_dir: Path, tmp_path: Path, flag: str, fmt: str, magic: bytes
) -> None:
    out = tmp_path / "report"
    result = run_cli("report", "--deployment-state-dir", state_dir, "--output", out,
                     flag, fmt, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["image_paths"] == [str(out / f"{n}.{fmt}") for n in NAMES]
    for path in report["image_paths"]:
        assert Path(path).read_bytes()[:64].lstrip().startswith(magic) or \
            magic in Path(path).read_bytes()[:256]
    assert list(_page(out / "report.html").specs) == NAMES


def test_report_process_loads_neither_altair_nor_vl_convert(
    state_dir: Path, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "from tau_ops.cli import main\n"
        f"main(['report', '--deployment-state-dir', {str(state_dir)!r},"
        f" '--output', {str(tmp_path / 'out')!r}])\n"
        "print(sorted(m for m in ('altair', 'vl_convert', 'jsonschema') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


def test_report_refuses_a_missing_state_dir(tmp_path: Path) -> None:
    result = run_cli("report", "--deployment-state-dir", tmp_path / "nope" / "x",
                     "--output", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no such state dir") and "Traceback" not in result.stderr


def test_report_of_an_empty_state_dir_still_writes_files(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    result = run_cli("report", "--deployment-state-dir", tmp_path / "state",
                     "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"recommendation: {ACTIONS['no_cycle']}",
        "summary: rollout_gate=hold rollout_gate_reasons=no_cycle: no deployment cycle "
        "recorded yet; history: no cycles recorded"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]
    assert list(_page(tmp_path / "out" / "report.html").specs) == NAMES


def test_fleet_summary_and_report_have_one_section_per_source(tmp_path: Path) -> None:
    from tau_ops.analysis import summary

    eu, us = tmp_path / "eu", tmp_path / "us"
    write_event_log(eu / "runtime-events.jsonl", event_line(T0))
    write_event_log(us / "runtime-events.jsonl",
                    event_line(T0, "failing", ["case_processing_failed"], failed_cases=1,
                               failure_streak=3))
    posture = summary(load_events([eu, us]))
    assert list(posture.by_source) == [str(eu), str(us)]
    assert [(s.health_state, s.cycles) for s in posture.by_source.values()] == [
        ("healthy", 1), ("failing", 1)]
    assert [line.split(": ")[0] for line in posture.section_lines] == [str(eu), str(us)]
    out = tmp_path / "report"
    result = run_cli("report", "--deployment-state-dir", eu, "--deployment-state-dir", us,
                     "--output", out, "--json", "--image-format", "svg")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [Path(p).name for p in report["image_paths"]] == [
        f"{chart}-{Path(d).as_posix().replace('/', '_')}.svg"
        for d in (eu, us)
        for chart in ("reason-code-trends", "health-timeline", "failure-streak-queue-depth")]
    page = Path(report["html_path"]).read_text()
    assert page.count('<section class="source">') == 2
    assert f"<h2>{eu}</h2>" in page and f"<h2>{us}</h2>" in page
    assert (report["cycles"], report["incidents"]) == (2, 1)


def test_sources_whose_names_sanitize_alike_keep_their_own_images(tmp_path: Path) -> None:
    slash, underscore = tmp_path / "a" / "d", tmp_path / "a_d"
    for folder in (slash, underscore):
        write_event_log(folder / "runtime-events.jsonl", event_line(T0))
    out = tmp_path / "report"
    result = run_cli("report", "--deployment-state-dir", slash, "--deployment-state-dir",
                     underscore, "--output", out, "--json", "--image-format", "svg")
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout)["image_paths"]
    assert len(images) == len(set(images)) == 6
    assert all(Path(p).is_file() for p in images)
