"""Readers see committed cycles only, and one consistent view across a rotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import fixture, retryable_case, success_case

from tau_ops import FakeClock, RunnerConfig, parse_fixture, run_cycle, storage
from tau_ops.analysis import _parse
from tau_ops.analysis.loaders import read_events, scan_events
from tau_ops.errors import StateError
from tau_ops.events import read_event_file
from tau_ops.ops import diagnosis
from tau_ops.ops.diagnosis import diagnose
from tau_ops.readview import read_consistently
from tau_ops.status import deployment_status


def cycle(state_dir: Path, *cases: dict[str, Any], now: int = 1_700_000_000_000) -> Any:
    clock = FakeClock(now)
    return run_cycle(parse_fixture(json.dumps(fixture(*cases))),
                     RunnerConfig(state_dir=state_dir, retry_max_attempts=1),
                     clock=clock, sleeper=clock.sleep)


def leave_uncommitted_failed_cycle(state: Path) -> None:
    """What a runner killed (or out of space) between append and commit leaves behind."""
    events = state / "runtime-events.jsonl"
    size = events.stat().st_size
    line = json.loads(events.read_text().splitlines()[-1])
    line.update(reason_codes=["case_processing_failed"], failed_cases=1)
    (state / ".cycle-journal.json").write_text(json.dumps({
        "state_sha256": "0" * 64, "append_sizes": {"runtime-events.jsonl": size},
        "rewrites": {}}))
    with open(events, "a") as handle:
        handle.write(json.dumps(line) + "\n")


def test_status_counts_only_committed_cycles(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    leave_uncommitted_failed_cycle(state)
    report = deployment_status(state, now_ms=1_700_000_000_000)
    assert (report.cycle_reports, report.last_reason_codes, report.health_state,
            report.rollout_gate, report.reason_code_counts) == (
        1, ["cloud_rollout_applied"], "healthy", "pass", {"cloud_rollout_applied": 1})


@pytest.mark.parametrize("cache", [True, False])
def test_loader_reads_only_committed_cycles(tmp_path: Path, cache: bool) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    leave_uncommitted_failed_cycle(state)
    loaded = read_events(state, cache=cache)
    assert loaded.frame["reason_codes"].to_list() == [["cloud_rollout_applied"]]
    assert loaded.invalid_lines == 0


def four_events_in_rotated_files(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "600")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "10")
    for i in range(4):
        cycle(state, success_case(f"c{i}"), now=1_700_000_000_000 + i)
    assert len(storage.rotated_files(state / "runtime-events.jsonl")) == 4


def test_status_read_overlapping_a_rotation_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    four_events_in_rotated_files(state, monkeypatch)
    import tau_ops.status as status

    real = read_event_file
    calls = {"n": 0}

    def rotating_read(path: Path, limit: int | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # a writer rotates while the reader is half-way
            storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)
        return real(path, limit)

    monkeypatch.setattr(status, "read_event_file", rotating_read)
    report = deployment_status(state, now_ms=1_700_000_000_003)
    assert (report.cycle_reports, report.invalid_cycle_reports) == (4, 0)


def test_loader_overlapping_a_rotation_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    four_events_in_rotated_files(state, monkeypatch)
    real = _parse.parse_file
    calls = {"n": 0}

    def rotating_parse(path: Path, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)
        return real(path, **kw)

    monkeypatch.setattr(_parse, "parse_file", rotating_parse)
    loaded = read_events(state, cache=False)
    stamps = [t.timestamp() * 1000 for t in loaded.frame["timestamp"].to_list()]
    assert stamps == [1_700_000_000_000 + i for i in range(4)]


def test_a_view_that_never_holds_still_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "grows"
    path.write_text("")

    def grow(files: list[Path]) -> int:
        with open(path, "a") as handle:
            handle.write("x")
        return 0

    with pytest.raises(StateError, match="kept changing while being read"):
        read_consistently(lambda: [path], grow, what="test log")


def test_retryable_failure_cycle_still_counts_once_committed(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    cycle(state, retryable_case("r"))
    report = deployment_status(state, now_ms=1_700_000_000_000)
    assert report.cycle_reports == 2 and "case_processing_failed" in report.last_reason_codes


def stamps_of(frame: Any) -> list[int]:
    return [int(t.timestamp() * 1000) for t in frame["timestamp"].to_list()]


@pytest.mark.parametrize("cache", [True, False])
def test_lazy_scan_reads_only_committed_cycles(tmp_path: Path, cache: bool) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    read_events(state)  # a cache entry exists for the active file when cache=True
    leave_uncommitted_failed_cycle(state)
    assert scan_events(state, cache=cache).collect()["reason_codes"].to_list() == [
        ["cloud_rollout_applied"]]


@pytest.mark.parametrize("cache", [True, False])
def test_lazy_scan_planned_before_a_rotation_reads_the_view_it_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    state = tmp_path / "s"
    four_events_in_rotated_files(state, monkeypatch)
    if cache:
        read_events(state)
    lazy = scan_events(state, cache=cache)
    storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)  # every file renamed
    cycle(state, success_case("late"), now=1_700_000_000_009)  # and a new cycle appended
    assert stamps_of(lazy.collect()) == [1_700_000_000_000 + i for i in range(4)]


def test_lazy_scan_overlapping_a_rotation_reads_every_event_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    four_events_in_rotated_files(state, monkeypatch)
    real = _parse.iter_batches
    calls = {"n": 0}

    def rotating_batches(paths: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # a writer rotates while the plan is half-way through the files
            storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)
        return real(paths, **kw)

    monkeypatch.setattr(_parse, "iter_batches", rotating_batches)
    frame = scan_events(state, cache=False).collect()
    assert calls["n"] == 4
    assert stamps_of(frame) == [1_700_000_000_000 + i for i in range(4)]


def test_lazy_scan_whose_file_was_rotated_out_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    four_events_in_rotated_files(state, monkeypatch)
    lazy = scan_events(state, cache=False)
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "4")
    storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)  # the oldest backup is gone
    with pytest.raises(StateError, match="was rotated away or replaced since the view was taken"):
        lazy.collect()


def test_diagnosis_overlapping_a_rotation_sees_every_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "600")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "10")
    state = tmp_path / "s"
    for i in range(4):
        cycle(state, retryable_case(f"r{i}"), now=1_700_000_000_000 + i)
    assert len(storage.rotated_files(state / "runtime-events.jsonl")) == 4
    calm = diagnose(state, now_ms=1_700_000_000_004)
    real = read_event_file
    calls = {"n": 0}

    def rotating_read(path: Path, limit: int | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)
        return real(path, limit)

    monkeypatch.setattr(diagnosis, "read_event_file", rotating_read)
    raced = diagnose(state, now_ms=1_700_000_000_004)
    assert calls["n"] > 4  # the raced read was retried
    assert raced == calm
    evidence = {f.symptom: [c.timestamp_unix_ms for c in f.cycles] for f in raced.findings}
    assert evidence["failing_streak"] == [1_700_000_000_000 + i for i in range(4)]


def test_diagnosis_counts_only_committed_cycles(tmp_path: Path) -> None:
    state = tmp_path / "s"
    for i in range(3):
        cycle(state, retryable_case(f"r{i}"), now=1_700_000_000_000 + i)
    before = diagnose(state, now_ms=1_700_000_000_003)
    leave_uncommitted_failed_cycle(state)
    assert diagnose(state, now_ms=1_700_000_000_003) == before
