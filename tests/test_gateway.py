"""The real gateway: ``python -m tau_ops`` serving uvicorn on loopback, queried over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from builders import REPO, retryable_case, run_cli, success_case, write_fixture
from prometheus_client.parser import text_string_to_metric_families

from tau_ops.contract import load_fixture
from tau_ops.health import ACTIONS
from tau_ops.runner import RunnerConfig, run_cycle

TOKEN = "gw-test-token-7f3a9c"
START_TIMEOUT_S = 20
VOLATILE = {"state_age_ms", "generated_unix_ms", "judged_unix_ms"}  # judged at request time


@dataclass
class Gateway:
    proc: subprocess.Popen[str]
    url: str
    line: str
    log: Path

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=10)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and everything written to stderr."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=10)
        return self.proc.returncode, self.log.read_text()


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The test's environment without TAU_* settings and without any provider API key."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TAU_") and not k.endswith("_API_KEY")}
    env.update(extra)
    return env


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            raise AssertionError(f"gateway did not report listening within {timeout}s")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise AssertionError(f"gateway exited early with status {proc.wait()}")
        line += chunk
    return line.decode()


@contextmanager
def gateway(state_dir: Path, *args: str, env: dict[str, str] | None = None,
            command: tuple[str, ...] = ("gateway", "serve"),
            flags: bool = True) -> Iterator[Gateway]:
    """Start the real gateway on 127.0.0.1 with an OS-chosen port; always stopped afterwards.

    ``flags=False`` passes no state dir or bind flag: ``env`` must set them.
    """
    argv = [sys.executable, "-m", "tau_ops", *command, *args]
    if flags:
        argv += ["--deployment-state-dir", str(state_dir)]
        if "--gateway-openresponses-bind" not in args:
            argv += ["--gateway-openresponses-bind", "127.0.0.1:0"]
    # stderr (one line per request) goes to a file: an unread pipe would fill and stall it
    log = state_dir.parent / f"gateway-{time.monotonic_ns()}.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(argv, cwd=REPO, env=_env(env or {}), stdout=subprocess.PIPE,
                                stderr=stderr, text=True)
    try:
        line = _read_line(proc, START_TIMEOUT_S)
        port = int(re.search(r"port=(\d+)", line).group(1))  # type: ignore[union-attr]
        yield Gateway(proc, f"http://127.0.0.1:{port}", line, log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def cycles(state_dir: Path, *cases: dict[str, object], times: int = 1) -> None:
    path = write_fixture(state_dir.parent, *cases, name=f"fx-{len(cases)}-{times}")
    for _ in range(times):
        run_cycle(load_fixture(path), RunnerConfig(state_dir=state_dir))


@pytest.fixture
def healthy(tmp_path: Path) -> Path:
    state_dir = tmp_path / "healthy"
    cycles(state_dir, success_case("api"), success_case("edge", target="wasm", blueprint_id="edge"))
    return state_dir


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    state_dir = tmp_path / "failing"
    cycles(state_dir, success_case("api"), retryable_case("flaky"), times=3)
    return state_dir


def cli_json(state_dir: Path, *flags: str) -> dict[str, object]:
    result = run_cli("--deployment-state-dir", state_dir, *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def without(doc: dict[str, object], keys: set[str]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k not in keys}


def test_status_of_a_healthy_state_dir(healthy: Path) -> None:
    with gateway(healthy) as gw:
        status = gw.get("/gateway/status")
        deployment = gw.get("/deployment/status")
        transport = gw.get("/transport/health")
    assert status.status_code == 200
    assert status.headers["content-type"] == "application/json"
    doc = status.json()
    assert without(doc, VOLATILE | {"deployment", "updated_unix_ms", "updated_utc"}) == {
        "service": "tau-ops-gateway",
        "health_state": "healthy",
        "health_reason": "last cycle completed with no failures, malformed inputs or retries",
        "recommendation": "no action needed; promotion can continue",
        "rollout_gate": "pass",
        "rollout_gate_reasons": [],
        "rollout_gate_reason": "last cycle completed with no failures, malformed inputs or "
                               "retries",
        "reason_codes": ["wasm_rollout_applied", "cloud_rollout_applied"],
        "stale_after_ms": 86_400_000,
        "stale": False,
        "runner_paused": False,
        "failure_streak": 0,
        "queue_depth": 0,
        "rollout_count": 2,
        "cycle_reports": 1,
    }
    assert 0 <= doc["state_age_ms"] < 60_000
    cli_status = cli_json(healthy, "--deployment-status-inspect", "--deployment-status-json")
    assert without(doc["deployment"], VOLATILE) == without(cli_status, VOLATILE)
    assert without(deployment.json(), VOLATILE) == without(cli_status, VOLATILE)
    cli_health = cli_json(healthy, "--transport-health-inspect", "deployment",
                          "--transport-health-json")
    assert [without(row, VOLATILE) for row in transport.json()] == [
        without(row, VOLATILE) for row in cli_health]


def test_status_of_a_failing_state_dir(failing: Path) -> None:
    with gateway(failing) as gw:
        doc = gw.get("/gateway/status").json()
    assert {k: doc[k] for k in ("health_state", "rollout_gate", "failure_streak",
                                "reason_codes", "cycle_reports")} == {
        "health_state": "failing",
        "rollout_gate": "hold",
        "failure_streak": 3,
        "reason_codes": ["duplicate_cases_skipped", "retry_attempted",
                         "retryable_failures_observed", "case_processing_failed"],
        "cycle_reports": 3,
    }
    assert doc["health_reason"].startswith("failure_streak=3 reached the failing threshold")
    assert doc["deployment"]["health"]["last_cycle_failed"] == 1
    assert doc["rollout_gate_reasons"] == ["health_failing"]


def test_token_is_required_when_set_and_never_logged(healthy: Path) -> None:
    with gateway(healthy, env={"TAU_GATEWAY_AUTH_TOKEN": TOKEN}) as gw:
        missing = gw.get("/gateway/status")
        wrong = gw.get("/gateway/status", Authorization="Bearer not-the-token")
        basic = gw.get("/metrics", Authorization=f"Basic {TOKEN}")
        good = gw.get("/gateway/status", Authorization=f"Bearer {TOKEN}")
        metrics = gw.get("/metrics", Authorization=f"bearer {TOKEN}")
        code, err = gw.stop()
    assert "auth=bearer" in gw.line and TOKEN not in gw.line
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.json() == {"error": "unauthorized",
                                  "message": "missing or invalid bearer token"}
        assert refused.headers["www-authenticate"].startswith('Bearer realm="tau-ops"')
    assert wrong.headers["www-authenticate"] == 'Bearer realm="tau-ops", error="invalid_token"'
    assert (good.status_code, good.json()["rollout_gate"]) == (200, "pass")
    assert metrics.status_code == 200
    assert code == 0
    assert TOKEN not in err and "not-the-token" not in err and "authorization" not in err.lower()
    assert [re.sub(r"duration_ms=\S+", "", line) for line in err.splitlines()] == [
        f"info: request method=GET path={path} status={status} "
        for path, status in [("/gateway/status", 401), ("/gateway/status", 401),
                             ("/metrics", 401), ("/gateway/status", 200), ("/metrics", 200)]
    ]


def test_corrupt_state_answers_503_then_recovers_once_fixed(healthy: Path) -> None:
    state_file = healthy / "state.json"
    good = state_file.read_bytes()
    with gateway(healthy) as gw:
        assert gw.get("/gateway/status").status_code == 200
        state_file.write_text("{not json")
        broken = [gw.get(p) for p in ("/gateway/status", "/deployment/status",
                                      "/transport/health")]
        metrics = gw.get("/metrics")
        state_file.write_bytes(good)
        fixed = gw.get("/gateway/status")
    for response in broken:
        assert response.status_code == 503
        message = (f"state file {state_file} is corrupt and cannot be parsed: "
                   "not valid JSON: key must be a string at line 1 column 2")
        assert response.json() == {
            "error": "state_corrupt",
            "message": message,
            "state_dir": str(healthy),
            "rollout_gate": "hold",
            "rollout_gate_reasons": ["invalid_state"],
            "rollout_gate_reason": f"state is invalid: {message}",
            "recommendation": ACTIONS["invalid_state"],
            "runner_paused": False,
        }
    assert metrics.status_code == 200
    assert "tau_state_valid 0.0\n" in metrics.text
    assert 'tau_rollout_gate{gate="hold"} 1.0\n' in metrics.text
    assert "tau_health_state" not in metrics.text
    assert (fixed.status_code, fixed.json()["rollout_gate"]) == (200, "pass")
    assert state_file.read_bytes() == good  # the gateway never rewrites state


def test_missing_state_answers_503_until_the_first_cycle(tmp_path: Path) -> None:
    state_dir = tmp_path / "fresh"
    with gateway(state_dir) as gw:
        missing = gw.get("/gateway/status")
        metrics = gw.get("/metrics")
        cycles(state_dir, success_case("api"))
        after = gw.get("/gateway/status")
    assert missing.status_code == 503
    assert missing.json()["error"] == "state_missing"
    assert (missing.json()["rollout_gate"], missing.json()["rollout_gate_reasons"]) == (
        "hold", ["no_cycle"])
    assert "no deployment cycle recorded yet" in missing.json()["message"]
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["tau_state_exists"].samples[0].value == 0
    gate = {s.labels["gate"]: s.value for s in families["tau_rollout_gate"].samples}
    assert gate == {"pass": 0, "hold": 1}
    assert (after.status_code, after.json()["health_state"]) == (200, "healthy")


def test_unknown_paths_and_methods_answer_json_errors(healthy: Path) -> None:
    with gateway(healthy) as gw:
        unknown = gw.get("/gateway/statuz")
        post = httpx.post(gw.url + "/gateway/status", timeout=10)
    assert (unknown.status_code, unknown.json()) == (
        404, {"error": "not_found", "message": "no such path: /gateway/statuz"})
    assert (post.status_code, post.json()["error"]) == (405, "method_not_allowed")
    assert "GET" in post.headers["allow"]


def _strict_exposition_check(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample belongs to a family announced by HELP then TYPE gauge; returns the values."""
    sample = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$')
    announced: dict[str, str] = {}
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    lines = text.split("\n")
    assert lines[-1] == "", "exposition must end with a newline"
    for line in lines[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in announced, f"{name} announced twice"
            announced[name] = "help"
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert announced.get(name) == "help" and kind == "gauge", line
            announced[name] = kind
        else:
            match = sample.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            assert announced.get(name) == "gauge", f"{name} has no HELP/TYPE"
            pairs = tuple(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels or ""))
            values.setdefault(name, {})[pairs] = float(value)
    return values


def test_metrics_parse_as_prometheus_text(failing: Path) -> None:
    with gateway(failing) as gw:
        response = gw.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    values = _strict_exposition_check(response.text)
    parsed = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert set(parsed) == set(values)
    assert {name: family.type for name, family in parsed.items()} == dict.fromkeys(values, "gauge")
    assert values["tau_rollout_gate"] == {(("gate", "pass"),): 0, (("gate", "hold"),): 1}
    assert values["tau_health_state"] == {(("state", "healthy"),): 0,
                                          (("state", "degraded"),): 0,
                                          (("state", "failing"),): 1}
    assert values["tau_failure_streak"] == {(): 3}
    assert values["tau_queue_depth"] == {(): 0}
    assert values["tau_event_log_cycle_reports"] == {(): 3}
    assert values["tau_rollout_records"] == {(("deploy_target", "kubernetes"),): 1}
    assert values["tau_last_cycle_reason_code"] == {
        (("reason_code", code),): 1
        for code in ("duplicate_cases_skipped", "retry_attempted",
                     "retryable_failures_observed", "case_processing_failed")
    }
    reason_cycles = values["tau_event_log_reason_code_cycles"]
    assert reason_cycles[(("reason_code", "case_processing_failed"),)] == 3


async def _hammer(url: str, total: int, clients: int) -> tuple[int, int, float]:
    ok = lost = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker(count: int) -> None:
            nonlocal ok, lost
            for _ in range(count):
                try:
                    response = await client.get("/gateway/status")
                except httpx.HTTPError:
                    lost += 1
                    continue
                if response.status_code == 200 and response.json()["rollout_gate"] == "pass":
                    ok += 1
                else:
                    lost += 1
        started = time.perf_counter()
        await asyncio.gather(*(worker(total // clients) for _ in range(clients)))
        return ok, lost, time.perf_counter() - started


def test_bounded_load_loses_no_request(healthy: Path) -> None:
    total, clients = 5000, 8
    with gateway(healthy) as gw:
        ok, lost, elapsed = asyncio.run(_hammer(gw.url, total, clients))
        code, _ = gw.stop()
    print(f"gateway load: {total} requests from {clients} clients in {elapsed:.2f}s "
          f"= {total / elapsed:.0f} req/s")
    assert (ok, lost, code) == (total, 0, 0)


def test_sigterm_shuts_down_promptly_with_status_0(healthy: Path) -> None:
    with gateway(healthy) as gw:
        assert gw.get("/gateway/status").status_code == 200
        started = time.monotonic()
        code, err = gw.stop()
    assert code == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in err


def test_transport_mode_env_starts_the_gateway(healthy: Path) -> None:
    env = {"TAU_TRANSPORT_MODE": "gateway", "TAU_GATEWAY_OPENRESPONSES_BIND": "127.0.0.1:0"}
    with gateway(healthy, env=env, command=()) as gw:
        assert gw.line.startswith("gateway listening: host=127.0.0.1 port=")
        assert gw.get("/gateway/status").json()["health_state"] == "healthy"


def test_state_dir_and_bind_from_environment(healthy: Path) -> None:
    env = {"TAU_TRANSPORT_MODE": "gateway", "TAU_GATEWAY_OPENRESPONSES_BIND": "127.0.0.1:0",
           "TAU_DEPLOYMENT_STATE_DIR": str(healthy)}
    with gateway(healthy, env=env, command=(), flags=False) as gw:
        doc = gw.get("/deployment/status").json()
    assert doc["state_dir"] == str(healthy)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--gateway-openresponses-bind", "localhost"], {},
         "error: invalid gateway bind 'localhost': expected HOST:PORT or [IPV6]:PORT"),
        ([], {"TAU_TRANSPORT_MODE": "gateway", "TAU_GATEWAY_OPENRESPONSES_BIND": "::1:80"},
         "error: invalid gateway bind '::1:80': expected HOST:PORT or [IPV6]:PORT "
         "(put an IPv6 address in brackets)"),
        (["--transport-mode", "grpc"], {},
         "error: unsupported transport mode 'grpc' (--transport-mode / TAU_TRANSPORT_MODE "
         "takes gateway)"),
        (["--transport-mode", "gateway"], {"TAU_GATEWAY_AUTH_TOKEN": " "},
         "error: TAU_GATEWAY_AUTH_TOKEN is set but empty; unset it to serve without "
         "authentication"),
    ],
)
def test_bad_gateway_settings_exit_2_with_one_error_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    command = ["gateway", "serve", *args] if "--transport-mode" not in args and not env.get(
        "TAU_TRANSPORT_MODE") else args
    result = run_cli(*command, "--deployment-state-dir", tmp_path, env=env, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")


def test_address_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("gateway", "serve", "--deployment-state-dir", tmp_path,
                         "--gateway-openresponses-bind", f"127.0.0.1:{port}", timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.splitlines()) == 1


def test_serving_needs_no_provider_secrets(healthy: Path) -> None:
    with gateway(healthy) as gw:
        environ = Path(f"/proc/{gw.proc.pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert gw.get("/gateway/status").status_code == 200
    assert not {n for n in names if n.endswith("_API_KEY")}
