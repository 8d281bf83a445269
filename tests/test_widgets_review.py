"""The incident review, driven as an operator would: pick a range and filters, read the views."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from builders import fixture, malformed_case, retryable_case, success_case

import tau_ops
from tau_ops import analysis
from tau_ops.analysis import select_events
from tau_ops.clock import FakeClock
from tau_ops.widgets import IncidentReview
from tau_ops.widgets.review import WRAPPED

START_MS = 1_700_000_000_000
STEP_MS = 10 * 60_000


def run(state: Path, clock: FakeClock, name: str, *cases: dict[str, object]) -> None:
    parsed = tau_ops.parse_fixture(json.dumps(fixture(*cases, name=name)))
    tau_ops.run_cycle(parsed, tau_ops.RunnerConfig(state_dir=state), clock=clock,
                      sleeper=clock.sleep)
    clock.advance(STEP_MS)


def build_history(state: Path) -> FakeClock:
    """4 healthy cycles, a 5-cycle incident (outage to failing, then a malformed input),
    3 healthy wasm cycles; one cycle every 10 minutes."""
    clock = FakeClock(START_MS)
    for i in range(4):
        run(state, clock, "steady", success_case(f"ok-{i}"))
    for i in range(4):
        run(state, clock, "outage", success_case(f"w-{i}"), retryable_case("down"))
    run(state, clock, "bad", malformed_case("bad", status=400,
                                            error_code="deployment_invalid_blueprint",
                                            reason="unsupported_target", deploy_target="lambda"))
    for i in range(3):
        run(state, clock, "recover", success_case(f"r-{i}", target="wasm",
                                                  blueprint_id="edge-wasm"))
    return clock


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("review") / "state"
    build_history(state)
    return state


def at(minutes: int) -> datetime:
    return datetime.fromtimestamp((START_MS + minutes * 60_000) / 1000, tz=UTC)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_building_the_review_only_reads_the_state_dir(history: Path) -> None:
    before = files_under(history)
    IncidentReview(history)
    assert files_under(history) == before


def test_whole_history_shows_the_analysis_answers(history: Path) -> None:
    review = IncidentReview(history)
    events = analysis.load_events(history, cache=False)
    assert review.selected.equals(events)
    assert review.time_range.value == (at(0), at(110))
    assert review.summary_label.value == WRAPPED.format(analysis.summary(events).line)
    assert review.incident_frame.equals(analysis.incidents(events))
    assert review.incident_frame.select("cycles", "peak_failure_streak").rows() == [(5, 4)]
    assert ">failing</td>" in review.incident_table.value
    assert set(review.charts) == {"reason_codes", "health", "streak_backlog"}
    assert all(view.value.startswith("<svg") for view in review.chart_views.values())
    assert review.actions == [
        ("retry_attempted", 4, analysis.troubleshooting_action("retry_attempted")),
        ("retryable_failures_observed", 4,
         analysis.troubleshooting_action("retryable_failures_observed")),
        ("case_processing_failed", 4, analysis.troubleshooting_action("case_processing_failed")),
        ("malformed_inputs_observed", 1,
         analysis.troubleshooting_action("malformed_inputs_observed")),
    ]
    assert review.blueprint.options == ("cloud-api", "edge-wasm")


def test_first_blueprint_log_and_whole_range_are_shown_without_a_click(history: Path) -> None:
    review = IncidentReview(history)
    assert review.blueprint.value == "cloud-api"
    assert "no channel-store log yet" not in review.channel_table.value
    assert review.channel_frame.height > 0
    assert review.time_range.readout is False  # the slider's readout cut the second time off
    assert review.range_label.value == (
        '<span class="tau-range" style="white-space:nowrap">'
        f"{at(0):%Y-%m-%d %H:%M:%S} &ndash; {at(110):%Y-%m-%d %H:%M:%S} UTC</span>")
    assert review.reason_filter.style.description_width == "8em"


def test_health_filter_keeps_only_matching_cycles_and_incidents(history: Path) -> None:
    review = IncidentReview(history)
    review.health_filter.value = ("healthy",)
    assert review.selected.get_column("health_state").cast(pl.String).unique().to_list() == [
        "healthy"]
    assert review.selected.height == 7
    assert review.incident_frame.height == 0
    assert review.incident_table.value == "<em>no incident in the range</em>"
    assert review.actions == []
    review.health_filter.value = ("failing",)
    assert review.selected.height == 2
    assert review.incident_frame.height == 1


def test_reason_code_filter_selects_cycles_carrying_the_code(history: Path) -> None:
    review = IncidentReview(history)
    review.reason_filter.value = ("malformed_inputs_observed",)
    assert review.selected.get_column("timestamp").to_list() == [at(80)]
    assert review.summary_label.value == WRAPPED.format(analysis.summary(review.selected).line)
    assert analysis.summary(review.selected).line.startswith("degraded")
    assert review.incident_frame.height == 0  # not among the incident's dominant codes
    review.reason_filter.value = ("retry_attempted",)
    assert review.selected.height == 4 and review.incident_frame.height == 1


def test_time_range_narrows_everything_including_the_channel_log(history: Path) -> None:
    review = IncidentReview(history)
    review.blueprint.value = "cloud-api"
    everything = review.channel_frame.height
    review.time_range.index = (0, 3)
    assert review.time_range.value == (at(0), at(30))
    assert review.selected.height == 4
    assert review.incident_frame.height == 0
    assert review.summary_label.value == WRAPPED.format(analysis.summary(review.selected).line)
    assert analysis.summary(review.selected).line.startswith("healthy: 4 cycles")
    assert review.channel_frame.get_column("case_id").to_list() == [f"ok-{i}" for i in range(4)]
    assert everything > 4


def test_blueprint_choice_shows_that_channel_log(history: Path) -> None:
    review = IncidentReview(history)
    review.blueprint.value = "edge-wasm"
    assert review.channel_frame.get_column("case_id").to_list() == ["r-0", "r-1", "r-2"]
    assert review.channel_frame.get_column("outcome").unique().to_list() == ["success"]
    assert ">r-2</td>" in review.channel_table.value


def test_reload_picks_up_new_cycles(tmp_path: Path) -> None:
    state = tmp_path / "state"
    clock = build_history(state)
    review = IncidentReview(state)
    review.blueprint.value = "edge-wasm"
    run(state, clock, "more", retryable_case("again", blueprint_id="edge-wasm"))
    review.reload_button.click()
    assert review.selected.height == 13
    assert review.time_range.value == (at(0), at(120))
    assert review.incident_frame.height == 2
    assert review.blueprint.value == "edge-wasm"
    assert review.channel_frame.get_column("case_id").to_list()[-1] == "again"


def test_empty_and_missing_state_dirs_are_shown_not_raised(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = IncidentReview(tmp_path / "empty")
    assert empty.summary_label.value == WRAPPED.format("no cycles recorded")
    assert empty.time_range.disabled
    assert empty.chart_views["health"].value == "<em>no cycle matches the range and filters</em>"
    missing = IncidentReview(tmp_path / "missing")
    assert "error: no such state dir" in missing.message.value
    assert not (tmp_path / "missing").exists()


def test_select_events_combines_range_health_and_codes(history: Path) -> None:
    events = analysis.load_events(history, cache=False)
    chosen = select_events(events, start=at(40), end=at(80), health_states=("degraded",),
                           reason_codes=("case_processing_failed", "malformed_inputs_observed"))
    assert chosen.get_column("timestamp").to_list() == [at(40), at(50), at(80)]


def test_one_cycle_history_shows_its_range_charts_and_log(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run(state, FakeClock(START_MS), "outage", success_case("w"), retryable_case("down"))
    review = IncidentReview(state)
    assert review.time_range.value == (at(0), at(0))
    assert review.range_label.value == (
        '<span class="tau-range" style="white-space:nowrap">'
        f"{at(0):%Y-%m-%d %H:%M:%S} &ndash; {at(0):%Y-%m-%d %H:%M:%S} UTC</span>")
    assert review.selected.height == 1
    assert review.summary_label.value == WRAPPED.format(
        analysis.summary(review.selected).line)
    assert all(view.value.startswith("<svg") for view in review.chart_views.values())
    assert review.channel_frame.get_column("case_id").to_list() == ["down", "w"]  # queue order


def test_reload_after_the_history_was_replaced_shows_the_new_cycle(tmp_path: Path) -> None:
    """A restored snapshot can replace a one-cycle history by another: the review follows."""
    state = tmp_path / "state"
    run(state, FakeClock(START_MS + 5 * STEP_MS), "steady", success_case("before"))
    review = IncidentReview(state)
    shutil.rmtree(state)
    run(state, FakeClock(START_MS + 7 * STEP_MS), "steady", success_case("after"))
    review.reload()
    assert review.time_range.value == (at(70), at(70))
    assert review.selected.get_column("timestamp").to_list() == [at(70)]
    assert review.channel_frame.get_column("case_id").to_list() == ["after"]


def test_tables_show_utc_times_and_wrap_only_where_words_join(history: Path) -> None:
    review = IncidentReview(history)
    cell = "<td style='overflow-wrap:break-word;padding-right:0.8em'>{}</td>"
    table = review.channel_table.value
    assert "timestamp (UTC)</th>" in table
    assert cell.format(f"{at(0):%Y-%m-%d %H:%M:%S}") in table  # no +00:00 offset
    assert cell.format("deployment_<wbr>backend_<wbr>unavailable") in table
    incidents = review.incident_table.value
    assert cell.format(f"{at(40):%Y-%m-%d %H:%M:%S}") in incidents
    assert cell.format("retry_<wbr>attempted,<wbr> retryable_<wbr>failures_<wbr>observed,<wbr> "
                       "case_<wbr>processing_<wbr>failed") in incidents
