"""Charts are valid Vega-Lite over the right data; ``tau-ops report`` writes HTML and images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import event_line, run_cli, write_event_log

from tau_ops.analysis import (
    auto_every,
    health_timeline_chart,
    load_events,
    reason_code_trend_chart,
    streak_backlog_chart,
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


def _data(spec: dict[str, Any], name: str | None = None) -> list[dict[str, Any]]:
    name = name or spec["data"]["name"]
    return list(spec["datasets"][name])


def test_reason_code_chart_stacks_cycles_per_code(state_dir: Path) -> None:
    spec = reason_code_trend_chart(load_events(state_dir), every="1h").to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "bucket"
    assert spec["encoding"]["y"] == {"aggregate": "sum", "field": "cycles", "stack": "zero",
                                     "title": "cycles", "type": "quantitative"}
    assert spec["encoding"]["color"]["field"] == "reason_code"
    assert [(r["bucket"][:19], r["reason_code"], r["cycles"]) for r in _data(spec)] == [
        ("2023-11-14T22:00:00", "retry_attempted", 1),
        ("2023-11-14T22:00:00", "cloud_rollout_applied", 1),
        ("2023-11-14T23:00:00", "case_processing_failed", 1),
    ]


def test_health_timeline_chart_layers_incident_bands_over_shares(state_dir: Path) -> None:
    spec = health_timeline_chart(load_events(state_dir), every="1h").to_dict()
    bands, area = spec["layer"]
    assert bands["mark"]["type"] == "rect" and area["mark"]["type"] == "area"
    assert (bands["encoding"]["x"]["field"], bands["encoding"]["x2"]["field"]) == ("start", "end")
    assert [(r["start"][:19], r["end"][:19], r["worst_state"], r["incidents"])
            for r in _data(spec, bands["data"]["name"])] == [
        ("2023-11-14T22:00:00", "2023-11-15T00:00:00", "failing", 1)]
    assert [(r["health_state"], r["share"]) for r in _data(spec, area["data"]["name"])] == [
        ("healthy", 0.5), ("degraded", 0.5), ("failing", 1.0)]


def test_streak_backlog_chart_has_one_line_per_series(state_dir: Path) -> None:
    spec = streak_backlog_chart(load_events(state_dir), every="1h").to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["color"]["field"] == "series"
    assert [(r["series"], r["bucket"][:13], r["value"]) for r in _data(spec)] == [
        ("failure streak", "2023-11-14T22", 0), ("failure streak", "2023-11-14T23", 3),
        ("queue depth", "2023-11-14T22", 3), ("queue depth", "2023-11-14T23", 0),
    ]


def test_auto_every_keeps_charts_to_a_few_hundred_buckets() -> None:
    ts = pl.Series([0, 30 * 24 * 3600 * 1000]).cast(pl.Datetime("ms", "UTC"))
    assert auto_every(pl.DataFrame({"timestamp": ts})) == "6h"
    assert auto_every(pl.DataFrame({"timestamp": ts.head(1)})) == "1h"


@pytest.mark.parametrize("fmt,magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_report_command_writes_html_and_images(
    state_dir: Path, tmp_path: Path, fmt: str, magic: bytes
) -> None:
    out = tmp_path / "report"
    result = run_cli("report", "--deployment-state-dir", state_dir, "--output", out,
                     "--format", fmt, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = ["reason-code-trends", "health-timeline", "failure-streak-queue-depth"]
    assert report["image_paths"] == [str(out / f"{n}.{fmt}") for n in names]
    assert (report["cycles"], report["invalid_lines"], report["incidents"]) == (3, 1, 1)
    for path in report["image_paths"]:
        assert Path(path).read_bytes()[:64].lstrip().startswith(magic) or \
            magic in Path(path).read_bytes()[:256]
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 3 and "http" not in page.split("<svg")[0]
    assert "<script" not in page
    assert report["summary"] in page.replace("&#x27;", "'")
    assert "treat as rollout gate failure" in page


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
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "failure-streak-queue-depth.svg", "health-timeline.svg", "reason-code-trends.svg",
        "report.html"]
