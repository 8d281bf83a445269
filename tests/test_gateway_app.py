"""The gateway in process: the read/judge split of status, the file cache, bind parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from builders import fixture, malformed_case, retryable_case, success_case
from starlette.applications import Starlette

from tau_ops.clock import FakeClock
from tau_ops.contract import parse_fixture
from tau_ops.errors import StateError, UsageError
from tau_ops.gateway import BindAddress, StatusCache, create_app, parse_bind, render_metrics
from tau_ops.health import DEFAULT_STALE_AFTER_MS
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.status import (
    deployment_status,
    deployment_status_at,
    read_status_inputs,
    transport_health,
    transport_health_at,
)

NOW = 1_700_000_000_000


def cycle(state_dir: Path, *cases: dict[str, object], clock: FakeClock | None = None,
          **config: int) -> None:
    clock = clock or FakeClock(NOW)
    run_cycle(parse_fixture(json.dumps(fixture(*cases))),
              RunnerConfig(state_dir=state_dir, **config), clock=clock, sleeper=clock.sleep)


def call(app: Starlette, *steps: tuple[str, dict[str, str]] | Callable[[], None]
         ) -> list[httpx.Response]:
    """Send GET requests (path, headers) in order through the ASGI app; callables run between."""
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        responses = []
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            for step in steps:
                if callable(step):
                    step()
                else:
                    responses.append(await client.get(step[0], headers=step[1]))
        return responses
    return asyncio.run(run())


@pytest.fixture
def mixed_state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    cycle(state_dir, success_case("a"), success_case("w", target="wasm", blueprint_id="edge"),
          malformed_case("m", status=400, error_code="deployment_missing_artifact",
                         reason="missing_container_image", container_image=""),
          retryable_case("r"), queue_limit=3)
    cycle(state_dir, success_case("b"), clock=FakeClock(NOW + 1000))
    return state_dir


@pytest.mark.parametrize("age_ms", [0, 5_000, DEFAULT_STALE_AFTER_MS + 1])
def test_split_status_equals_the_one_call_reports(mixed_state: Path, age_ms: int) -> None:
    inputs = read_status_inputs(mixed_state)
    now = NOW + 1000 + age_ms
    assert deployment_status_at(inputs, now_ms=now) == deployment_status(mixed_state, now_ms=now)
    assert transport_health_at(inputs, now_ms=now) == transport_health(mixed_state, now_ms=now)


def test_split_status_equals_the_one_call_reports_without_state(tmp_path: Path) -> None:
    inputs = read_status_inputs(tmp_path / "nothing")
    assert inputs.state is None
    assert deployment_status_at(inputs, now_ms=NOW) == deployment_status(tmp_path / "nothing",
                                                                         now_ms=NOW)


def test_freshness_is_judged_at_the_given_time_from_the_same_inputs(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    inputs = read_status_inputs(tmp_path)
    fresh = deployment_status_at(inputs, now_ms=NOW + 10, stale_after_ms=1000)
    stale = deployment_status_at(inputs, now_ms=NOW + 1001, stale_after_ms=1000)
    assert (fresh.rollout_gate, fresh.stale, fresh.state_age_ms) == ("pass", False, 10)
    assert (stale.rollout_gate, stale.stale, stale.state_age_ms) == ("hold", True, 1001)


def test_cache_reads_once_until_a_file_changes(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    cache = StatusCache(tmp_path)
    first = cache.get()
    assert cache.get() is first and cache.reads == 1
    cycle(tmp_path, success_case("b"), clock=FakeClock(NOW + 5))  # replaces state, appends event
    second = cache.get()
    assert cache.reads == 2
    assert deployment_status_at(second, now_ms=NOW + 5).cycle_reports == 2


def test_cache_sees_an_event_appended_without_a_state_change(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    cache = StatusCache(tmp_path)
    cache.get()
    with open(tmp_path / "runtime-events.jsonl", "a") as handle:
        handle.write("not json\n")
    assert deployment_status_at(cache.get(), now_ms=NOW).invalid_cycle_reports == 1


def test_cache_sees_a_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "200")
    cycle(tmp_path, success_case("a"))
    cache = StatusCache(tmp_path)
    assert deployment_status_at(cache.get(), now_ms=NOW).event_files == 1
    cycle(tmp_path, success_case("b"), clock=FakeClock(NOW + 5))
    report = deployment_status_at(cache.get(), now_ms=NOW + 5)
    assert (report.event_files, report.cycle_reports) == (2, 2)


def test_cache_keeps_a_corrupt_state_error_until_the_file_is_fixed(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    good = (tmp_path / "state.json").read_bytes()
    (tmp_path / "state.json").write_text("{broken")
    cache = StatusCache(tmp_path)
    for _ in range(2):
        with pytest.raises(StateError, match="corrupt"):
            cache.get()
    assert cache.reads == 1
    (tmp_path / "state.json").write_bytes(good)
    assert cache.get().state is not None


def test_freshness_advances_on_every_request_without_rereading(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    clock = FakeClock(NOW + 100)
    app = create_app(state_dir=tmp_path, clock=clock, stale_after_ms=1000)
    first, second = (r.json() for r in call(app, ("/gateway/status", {}),
                                             lambda: clock.advance(2000),
                                             ("/gateway/status", {})))
    assert (first["state_age_ms"], first["stale"], first["rollout_gate"]) == (100, False, "pass")
    assert (second["state_age_ms"], second["stale"], second["rollout_gate"]) == (2100, True, "hold")
    assert second["recommendation"] != first["recommendation"]


def test_requests_are_logged_without_the_token(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    lines: list[str] = []
    app = create_app(state_dir=tmp_path, auth_token="s3cret-token", request_log=lines.append)
    call(app, ("/metrics?x=1", {"Authorization": "Bearer s3cret-token"}),
         ("/bad%0Apath", {"Authorization": "Bearer wrong"}))
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "request method=GET path=/metrics status=200",
        "request method=GET path=/bad%0Apath status=401",
    ]
    assert not any("s3cret" in line or "wrong" in line for line in lines)


def test_a_blank_or_spaced_token_is_refused(tmp_path: Path) -> None:
    for token in ("", "two words", "tab\tinside"):
        with pytest.raises(UsageError, match="TAU_GATEWAY_AUTH_TOKEN"):
            create_app(state_dir=tmp_path, auth_token=token)


def test_metrics_label_values_are_escaped(tmp_path: Path) -> None:
    cycle(tmp_path, success_case("a"))
    report = deployment_status_at(read_status_inputs(tmp_path), now_ms=NOW)
    report.target_counts = {'we"ird\\target\nx': 1}
    text = render_metrics(report, state_exists=True)
    assert 'tau_rollout_records{deploy_target="we\\"ird\\\\target\\nx"} 1.0\n' in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", BindAddress("127.0.0.1", 8080)),
        ("0.0.0.0:8080", BindAddress("0.0.0.0", 8080)),
        (" localhost:0 ", BindAddress("localhost", 0)),
        ("[::1]:9000", BindAddress("::1", 9000)),
        ("[::]:65535", BindAddress("::", 65535)),
    ],
)
def test_bind_addresses_are_parsed(text: str, expected: BindAddress) -> None:
    assert parse_bind(text) == expected


@pytest.mark.parametrize(
    "text", ["8080", "host:", ":8080", "host:http", "host:65536", "::1:8080", "[::1]8080",
             "[::1]:", "[127.0.0.1]:80", "host:-1"],
)
def test_bad_bind_addresses_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="invalid gateway bind"):
        parse_bind(text)


def test_bind_address_renders_back() -> None:
    assert [str(BindAddress("::1", 80)), str(BindAddress("0.0.0.0", 8080))] == [
        "[::1]:80", "0.0.0.0:8080"]
