"""Every events reader classifies each line the same way and reads the same values.

A differential property test: event lines are mutated (wrong JSON types,
duplicate keys, escapes and lone surrogates, huge and negative integers,
NaN, byte-order marks, CRLF, trailing commas, deep nesting) and the status
report, the analysis fast path (duckdb), the lazy scan and the one rule of
:mod:`tau_ops.events` must agree line by line.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import event_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tau_ops.analysis import load_events, read_events, scan_events
from tau_ops.analysis._fast import proven, typed_batches, typed_frame
from tau_ops.analysis._parse import EVENT_SCHEMA, _batches, empty_frame, parse_file
from tau_ops.events import COUNTERS, MAX_COUNTER, is_blank, parse_event_line
from tau_ops.jsonio import MAX_UNIX_MS
from tau_ops.models import REASON_CODES
from tau_ops.status import read_status_inputs

T0 = 1_700_000_000_000
INT_FIELDS = ("timestamp_unix_ms", *COUNTERS)
BAD_NUMBERS: tuple[Any, ...] = (
    "7", 2.5, 1.0, True, False, None, -1, [1], {"n": 1}, 2**31, 2**63, 10**20,
)


def _base(draw: st.DrawFn) -> dict[str, Any]:
    codes = draw(st.lists(st.sampled_from(REASON_CODES), max_size=3))
    event: dict[str, Any] = {
        "timestamp_unix_ms": draw(st.integers(0, MAX_UNIX_MS)),
        "health_state": draw(st.sampled_from(("healthy", "degraded", "failing"))),
        "health_reason": draw(st.sampled_from(("ok", "a, b: c", "{x} [y]", "caf\u00e9"))),
        "reason_codes": codes,
    }
    for name in draw(st.lists(st.sampled_from(COUNTERS), unique=True, max_size=len(COUNTERS))):
        event[name] = draw(st.integers(0, MAX_COUNTER))
    return event


def _text(event: dict[str, Any], spaced: bool) -> str:
    return json.dumps(event, separators=(", ", ": ") if spaced else (",", ":"))


@st.composite
def lines(draw: st.DrawFn) -> str:
    """One event line, valid or mutated in one of the ways readers used to disagree on."""
    event = _base(draw)
    spaced = draw(st.booleans())
    kind = draw(st.sampled_from((
        "valid", "number", "state", "reason", "codes", "dup_key", "dup_codes", "surrogate",
        "escape", "nan", "bom", "crlf", "trailing_comma", "deep", "extra", "blank", "torn",
        "micro", "not_object", "exponent", "control",
    )))
    if kind == "number":
        event[draw(st.sampled_from(INT_FIELDS))] = draw(st.sampled_from(BAD_NUMBERS))
    elif kind == "state":
        event["health_state"] = draw(st.sampled_from((1, "Healthy", None, ["healthy"])))
    elif kind == "reason":
        event["health_reason"] = draw(st.sampled_from((5, None, ["x"])))
    elif kind == "codes":
        event["reason_codes"] = draw(st.sampled_from(
            ("healthy_cycle", [1], ["bogus"], [None], [["healthy_cycle"]], None)))
    elif kind == "micro":
        event["timestamp_unix_ms"] = draw(st.sampled_from(
            (T0 * 1000, 9_000_000_000_000_000_000, MAX_UNIX_MS + 1, -T0)))
    elif kind == "extra":
        event["note"] = draw(st.sampled_from(("x", 1, [1, 2], {"a": "b"})))
    elif kind == "exponent":  # a number written so it reads as an integer, some shorter
        event[draw(st.sampled_from(INT_FIELDS))] = 987654321
    elif kind == "control":  # a raw control character inside a string
        event["health_reason"] = "a\u0001b" if draw(st.booleans()) else "tab\there"
    text = _text(event, spaced)
    if kind == "exponent":
        text = text.replace("987654321", draw(st.sampled_from(
            ("1e9", "1E2", "1e2", "1.5e1", "10e-1", "1e0", "1.0", "-0", "1e12", "17e11"))))
    elif kind == "control":
        text = text.replace("\\u0001", "\u0001").replace("\\t", "\t")
    if kind == "dup_key":
        name = draw(st.sampled_from(("health_state", "failed_cases", "note", "timestamp_unix_ms")))
        value = draw(st.sampled_from(('"failing"', "7", "0")))
        text = text[:-1] + f', "{name}": {value}' + "}"
        if draw(st.booleans()):
            text = "{" + f'"{name}": {value}, ' + text[1:]
    elif kind == "dup_codes":
        text = text[:-1] + ', "reason_codes": ["case_processing_failed"]}'
    elif kind == "surrogate":
        text = text.replace('"health_reason": "' if spaced else '"health_reason":"',
                            ('"health_reason": "' if spaced else '"health_reason":"') + "\\ud800")
    elif kind == "escape":
        text = text.replace('"health_state"', '"health\\u005fstate"')
    elif kind == "nan":
        value = draw(st.sampled_from(("NaN", "Infinity", "-Infinity")))
        field = draw(st.sampled_from(("note", "failed_cases")))
        text = text[:-1] + f', "{field}": {value}' + "}"
    elif kind == "bom":
        text = "\ufeff" + text
    elif kind == "crlf":
        text += "\r"
    elif kind == "trailing_comma":
        text = text[:-1] + ",}" if draw(st.booleans()) or '"]' not in text else text.replace(
            '"]', '",]', 1)
    elif kind == "deep":
        depth = draw(st.sampled_from((10, 70, 1000)))
        text = text[:-1] + ', "note": ' + "[" * depth + "]" * depth + "}"
    elif kind == "blank":
        text = draw(st.sampled_from(("", "   ", "\t", "\r")))
    elif kind == "torn":
        text = text[: draw(st.integers(1, max(1, len(text) - 1)))]
    elif kind == "not_object":
        text = draw(st.sampled_from(("42", "[]", '"x"', "null", "not json")))
    return text


def _expected(texts: list[str]) -> tuple[list[dict[str, Any]], int]:
    events: list[dict[str, Any]] = []
    invalid = 0
    for text in texts:
        raw = text.encode("utf-8", "surrogatepass")
        if is_blank(raw):
            continue
        event = parse_event_line(raw)
        if event is None:
            invalid += 1
        else:
            events.append(event)
    return events, invalid


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    out = frame.with_columns(pl.col("timestamp").dt.epoch("ms").alias("timestamp_unix_ms"))
    out = out.with_columns(pl.col("health_state").cast(pl.String),
                           pl.col("reason_codes").cast(pl.List(pl.String)))
    return out.select("timestamp_unix_ms", "health_state", "health_reason", "reason_codes",
                      *COUNTERS).to_dicts()


def _rule_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("timestamp_unix_ms", "health_state", "health_reason", "reason_codes", *COUNTERS)
    return [{name: event[name] for name in keep} for event in events]


def _typed(path: Path) -> pl.DataFrame | None:
    """The typed path's frame, or None; the scan's streamed proof must decide the same."""
    import duckdb

    con = duckdb.connect()
    frame = typed_frame(con, path, tuple(EVENT_SCHEMA), EVENT_SCHEMA)
    exact, kept = proven(con, path, EVENT_SCHEMA, keep=tuple(EVENT_SCHEMA))
    assert exact == (frame is not None)
    if frame is not None:
        assert kept is not None and pl.concat(kept).equals(frame)
        streamed = pl.concat(typed_batches(con, path, tuple(EVENT_SCHEMA), EVENT_SCHEMA))
        assert streamed.equals(frame)
    return frame


def _scanned(path: Path) -> tuple[pl.DataFrame, int]:
    """What the lazy scan reads from ``path`` with duckdb, whatever the file's size."""
    import duckdb

    parts = list(_batches(duckdb.connect(), path, tuple(EVENT_SCHEMA)))
    frames = [frame for frame, _ in parts] or [empty_frame()]
    return pl.concat(frames), sum(bad for _, bad in parts)


def _write(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "runtime-events.jsonl"
    path.write_bytes("".join(t + "\n" for t in texts).encode("utf-8", "surrogatepass"))
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=6))
def test_status_and_analysis_agree_line_by_line(texts: list[str]) -> None:
    events, invalid = _expected(texts)
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        path = _write(state_dir, texts)
        for exact_below in (None, 0):  # the rule itself (small file), then duckdb's paths
            frame, fast_invalid = parse_file(path, exact_below=exact_below)
            assert (_rows(frame), fast_invalid) == (_rule_rows(events), invalid)
        typed = _typed(path)  # the typed path alone: exact or it declines
        assert typed is None or (_rows(typed), 0) == (_rule_rows(events), invalid)
        scanned, scan_invalid = _scanned(path)
        assert (_rows(scanned), scan_invalid) == (_rule_rows(events), invalid)
        counts = read_status_inputs(state_dir).counts
        assert (counts["cycle_reports"], counts["invalid_cycle_reports"]) == (
            len(events), invalid)
        codes: dict[str, int] = {}
        for event in events:
            for code in event["reason_codes"]:
                codes[code] = codes.get(code, 0) + 1
        assert counts["reason_code_counts"] == dict(sorted(codes.items()))
        assert counts["last_reason_codes"] == (events[-1]["reason_codes"] if events else [])
        if len(texts) % 2:  # the other entry points share parse_file's checks; spot-check them
            log = read_events(state_dir, cache=False)
            assert (_rows(log.frame), log.invalid_lines) == (_rule_rows(events), invalid)
            assert _rows(scan_events(state_dir, cache=False).collect()) == _rule_rows(events)


def test_a_deep_line_is_one_invalid_line_for_every_reader(tmp_path: Path) -> None:
    deep = '{"note": ' + "[" * 1000 + "]" * 1000 + "}"
    _write(tmp_path, [event_line(T0), deep, event_line(T0 + 1000)])
    counts = read_status_inputs(tmp_path).counts
    assert (counts["cycle_reports"], counts["invalid_cycle_reports"]) == (2, 1)
    log = read_events(tmp_path, cache=False)
    assert (log.frame.height, log.invalid_lines) == (2, 1)


def test_coercible_values_are_invalid_not_coerced(tmp_path: Path) -> None:
    good = json.loads(event_line(T0, "degraded", ["case_processing_failed"], failed_cases=3))
    variants = [{**good, "failed_cases": "7"}, {**good, "failed_cases": 2.5},
                {**good, "failed_cases": True}, {**good, "timestamp_unix_ms": str(T0)},
                {**good, "timestamp_unix_ms": T0 * 1000},
                {**good, "timestamp_unix_ms": 9_000_000_000_000_000_000},
                {**good, "failed_cases": -1}, good]
    _write(tmp_path, [json.dumps(v) for v in variants])
    log = read_events(tmp_path, cache=False)
    assert (log.frame["failed_cases"].to_list(), log.invalid_lines) == ([3], 7)
    frame = load_events(tmp_path)  # the cached path reads the same
    assert frame["failed_cases"].to_list() == [3]


def _state_with_one_cycle(state_dir: Path) -> None:
    from builders import success_case

    from tau_ops.contract import parse_fixture
    from tau_ops.runner import RunnerConfig, run_cycle

    fixture = parse_fixture(json.dumps({
        "schema_version": 1, "name": "f", "cases": [success_case("c1")]}).encode())
    run_cycle(fixture, RunnerConfig(state_dir=state_dir))


def test_bad_lines_do_not_break_status_diagnose_gate_or_report(tmp_path: Path) -> None:
    from builders import run_cli

    state_dir = tmp_path / "state"
    _state_with_one_cycle(state_dir)
    good = json.loads((state_dir / "runtime-events.jsonl").read_text())
    with open(state_dir / "runtime-events.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"x": ' + "[" * 1000 + "]" * 1000 + "}\n")
        handle.write(json.dumps({**good, "timestamp_unix_ms": good["timestamp_unix_ms"] * 1000})
                     + "\n")
        handle.write(json.dumps({**good, "timestamp_unix_ms": 9_000_000_000_000_000_000}) + "\n")
    flag = ("--deployment-state-dir", state_dir)
    status = run_cli("--deployment-status-inspect", *flag, "--deployment-status-json")
    assert (status.returncode, status.stderr) == (0, "")
    assert (json.loads(status.stdout)["cycle_reports"],
            json.loads(status.stdout)["invalid_cycle_reports"]) == (1, 3)
    for args in (("diagnose", *flag), ("gate", *flag),
                 ("report", *flag, "--output", tmp_path / "report")):
        done = run_cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert "error" not in done.stderr and "Traceback" not in done.stderr


SEED_LINE = ('{"timestamp_unix_ms":1700000000000,"health_state":"degraded","health_reason":'
             '"retries: 2, failures 0","reason_codes":["retry_attempted","healthy_cycle"],'
             '"discovered_cases":3,"queued_cases":3,"applied_cases":3,"duplicate_skips":0,'
             '"malformed_cases":0,"retryable_failures":1,"retry_attempts":2,"failed_cases":0,'
             '"upserted_rollouts":3,"wasm_rollouts":1,"cloud_rollouts":2,"backlog_cases":0,'
             '"failure_streak":0}')


def test_the_typed_path_takes_the_compact_lines_both_runners_write(tmp_path: Path) -> None:
    runner = event_line(T0, "failing", ["case_processing_failed"], failed_cases=12,
                        health_reason="caf\u00e9 1e3 E").replace("\\u00e9", "\u00e9")
    texts = [SEED_LINE, runner] * 3
    path = _write(tmp_path, texts)
    typed = _typed(path)
    assert typed is not None
    assert _rows(typed) == _rule_rows(_expected(texts)[0])


@pytest.mark.parametrize("value", ['"7"', "7.0", "true", "-0", '"0x7"', '"7_0"', "7e0", "0.7E1"])
def test_a_coerced_number_sends_the_file_to_the_exact_path(tmp_path: Path, value: str) -> None:
    texts = [SEED_LINE, SEED_LINE.replace('"failed_cases":0', f'"failed_cases":{value}')]
    path = _write(tmp_path, texts)
    assert _typed(path) is None
    frame, invalid = parse_file(path, exact_below=0)
    events, expected_invalid = _expected(texts)
    assert (_rows(frame), invalid) == (_rule_rows(events), expected_invalid)
    scanned, scan_invalid = _scanned(path)
    assert (_rows(scanned), scan_invalid) == (_rule_rows(events), expected_invalid)


def test_a_shorter_exponent_cannot_be_balanced_by_a_longer_line(tmp_path: Path) -> None:
    # 1e9 is 7 bytes shorter than 1000000000; the extra member ,"x":12 is 7 bytes longer
    short = SEED_LINE.replace('"failed_cases":0', '"failed_cases":1e9')
    extra = SEED_LINE[:-1] + ',"x":12}'
    path = _write(tmp_path, [short, extra])
    assert _typed(path) is None
    frame, invalid = parse_file(path, exact_below=0)
    assert (frame.height, invalid) == (1, 1)
    scanned, scan_invalid = _scanned(path)
    assert (scanned.height, scan_invalid) == (1, 1)


@pytest.mark.parametrize("change", [
    ('"reason_codes":["retry_attempted"', '"reason_codes":["bogus"'),
    ('"reason_codes":["retry_attempted"', '"reason_codes":[null'),
    ('"health_reason":"retries: 2, failures 0"', '"health_reason":12345678901234567890123'),
    ('"health_reason":"retries: 2, failures 0"', '"health_reason":["retries: 2", 0]'),
    ('"health_state":"degraded"', '"health_state":"Degraded"'),
    ('"failure_streak":0', '"Failure_Streak":0'),
    ('"failed_cases":0', '"failed_cases":2147483648'),
])
def test_other_wrong_values_send_the_file_to_the_exact_path(
    tmp_path: Path, change: tuple[str, str]
) -> None:
    texts = [SEED_LINE, SEED_LINE.replace(*change)]
    assert texts[1] != SEED_LINE
    path = _write(tmp_path, texts)
    events, invalid = _expected(texts)
    typed = _typed(path)
    assert typed is None or (_rows(typed), 0) == (_rule_rows(events), invalid)
    frame, fast_invalid = parse_file(path, exact_below=0)
    assert (_rows(frame), fast_invalid) == (_rule_rows(events), invalid)
    scanned, scan_invalid = _scanned(path)
    assert (_rows(scanned), scan_invalid) == (_rule_rows(events), invalid)
