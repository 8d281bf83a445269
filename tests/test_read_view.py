"""Readers see committed cycles only, and one consistent view across a rotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import fixture, retryable_case, success_case

from tau_ops import FakeClock, RunnerConfig, parse_fixture, run_cycle, storage
from tau_ops.analysis import _parse
from tau_ops.analysis.loaders import read_events
from tau_ops.errors import StateError
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

    real = status.read_jsonl
    calls = {"n": 0}

    def rotating_read(path: Path) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # a writer rotates while the reader is half-way
            storage.rotate_if_needed(state / "runtime-events.jsonl", 10**9)
        return real(path)

    monkeypatch.setattr(status, "read_jsonl", rotating_read)
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
