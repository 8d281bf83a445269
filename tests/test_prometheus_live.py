"""A real Prometheus scraping two real gateways over loopback: dashboard queries and alerts.

Prometheus (the Debian ``prometheus`` binary) runs on 127.0.0.1 with a 1 s
scrape and evaluation interval, its own config and temporary TSDB, and loads
a test copy of the shipped rules where only ``TauRolloutGateHeld``'s ``for:``
is shortened. Gateway ``api`` stays healthy; gateway ``edge`` degrades during
the test. Everything is bounded (< 60 s) and every process is stopped.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import REPO, retryable_case, success_case
from test_gateway import cycles, gateway

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian package "
                       "prometheus; .ci/run installs it)"),
]
RULES = REPO / "deploy/prometheus/tau-ops-rules.yml"
DASHBOARD = REPO / "deploy/grafana/tau-ops.json"
DEADLINE_S = 50
HELD_FOR = "3s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rules_for_test(folder: Path) -> Path:
    """The shipped rules with the gate-held ``for:`` shortened and 1 s evaluation."""
    text = RULES.read_text()
    held = text.index("alert: TauRolloutGateHeld")
    end = text.index("for: 30m", held)
    text = text[:end] + f"for: {HELD_FOR}" + text[end + len("for: 30m"):]
    text = text.replace("interval: 30s", "interval: 1s")
    path = folder / "rules.yml"
    path.write_text(text)
    return path


@contextmanager
def prometheus(folder: Path, targets: list[str]) -> Iterator[Callable[..., Any]]:
    """Start Prometheus scraping ``targets``; yield ``api(path, **params)`` -> ``data``."""
    assert PROMETHEUS is not None
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "scrape_timeout": "1s"},
        "rule_files": [str(rules_for_test(folder))],
        "scrape_configs": [{"job_name": "tau-ops-gateway",
                            "static_configs": [{"targets": targets}]}],
    }))
    log = open(folder / "prometheus.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
         "--log.level=warn"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def api(path: str, **params: str) -> Any:
        response = httpx.get(base + "/api/v1/" + path, params=params, timeout=5)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    try:
        wait_until(lambda: _ready(base), "prometheus ready", proc=proc,
                   deadline=time.monotonic() + 20)
        yield api
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Callable[[], object], what: str, *, deadline: float,
               proc: subprocess.Popen[bytes] | None = None) -> Any:
    """Poll ``check`` every 0.2 s until it is truthy; fail at ``deadline`` (monotonic s)."""
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def dashboard_queries() -> dict[str, list[str]]:
    """Panel title -> its PromQL, with the ``$instance`` variable at its "All" value."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {panel["title"]: [t["expr"].replace("$instance", ".*") for t in panel["targets"]]
            for panel in dashboard["panels"]}


def series(api: Callable[..., Any], expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """An instant query's result as {sorted (label, value) pairs: sample value}."""
    found = {}
    for row in api("query", query=expr)["result"]:
        labels = tuple(sorted(row["metric"].items()))
        found[labels] = float(row["value"][1])
    return found


def test_prometheus_scrapes_two_gateways_runs_the_dashboard_and_fires_the_gate_alert(
        tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + DEADLINE_S
    api_dir, edge_dir = tmp_path / "api", tmp_path / "edge"
    cycles(api_dir, success_case("api"))
    cycles(edge_dir, success_case("edge"))
    with ExitStack() as stack:
        gateways = [stack.enter_context(gateway(d)) for d in (api_dir, edge_dir)]
        api_at, edge_at = (gw.url.removeprefix("http://") for gw in gateways)
        name = {api_at: "api", edge_at: "edge"}
        prom = stack.enter_context(prometheus(tmp_path, [api_at, edge_at]))

        def by_gateway(expr: str) -> dict[tuple[tuple[str, str], ...], float]:
            """Results with ``instance`` shown as api/edge, other labels kept."""
            return {tuple((k, name.get(v, v) if k == "instance" else v) for k, v in labels):
                    value for labels, value in series(prom, expr).items()}

        def up_targets() -> list[dict[str, Any]] | None:
            up = [t for t in prom("targets")["activeTargets"] if t["health"] == "up"]
            return up if len(up) == 2 else None

        targets = wait_until(up_targets, "both targets up", deadline=deadline)
        assert {t["labels"]["instance"] for t in targets} == {api_at, edge_at}
        wait_until(lambda: len(series(prom, "tau_rollout_gate")) == 4, "first scrapes",
                   deadline=deadline)
        queries = dashboard_queries()
        gate_expr = queries["Rollout gate"][0]
        assert by_gateway(gate_expr) == {(("instance", "api"),): 0, (("instance", "edge"),): 0}

        cycles(edge_dir, success_case("edge-2"), retryable_case("flaky"))  # edge degrades
        wait_until(lambda: by_gateway(gate_expr).get((("instance", "edge"),)) == 1,
                   "edge gate hold scraped", deadline=deadline)
        states: list[str] = []

        def held_alert() -> str | None:
            alerts = [a for a in prom("alerts")["alerts"]
                      if a["labels"]["alertname"] == "TauRolloutGateHeld"]
            assert all(a["labels"]["instance"] == edge_at for a in alerts), alerts
            if alerts and (not states or states[-1] != alerts[0]["state"]):
                states.append(alerts[0]["state"])
            return "firing" if "firing" in states else None

        wait_until(held_alert, "TauRolloutGateHeld firing", deadline=deadline)
        assert states in (["pending", "firing"], ["firing"])
        assert "pending" in states, "the alert must wait for its for: duration"

        results = {title: [by_gateway(e) for e in exprs] for title, exprs in queries.items()}
        age_panel = results.pop("Last cycle age")

    api_, edge = (("instance", "api"),), (("instance", "edge"),)
    job = ("job", "tau-ops-gateway")
    assert results == {
        "Rollout gate": [{api_: 0, edge: 1}],
        "Health": [{api_: 0, edge: 1}],
        "Gateway up, state valid": [
            {(("__name__", "up"), ("instance", g), job): 1 for g in ("api", "edge")},
            {(("__name__", "tau_state_valid"), ("instance", g), job): 1
             for g in ("api", "edge")}],
        "Gate hold reasons": [{
            (("__name__", "tau_rollout_gate_reason"), ("instance", "edge"), job,
             ("reason", "health_degraded")): 1}],
        "Failure streak": [{(("__name__", "tau_failure_streak"), ("instance", "api"), job): 0,
                            (("__name__", "tau_failure_streak"), ("instance", "edge"), job): 1}],
        "Backlog (queue depth)": [
            {(("__name__", "tau_queue_depth"), ("instance", g), job): 0 for g in ("api", "edge")}],
        "Reason codes of the last cycle over time": [{
            (("reason_code", "cloud_rollout_applied"),): 2,
            (("reason_code", "case_processing_failed"),): 1,
            (("reason_code", "retry_attempted"),): 1,
            (("reason_code", "retryable_failures_observed"),): 1}],
        "Last cycle cases by outcome": [
            {(("outcome", "applied"),): 2, (("outcome", "malformed"),): 0,
             (("outcome", "failed"),): 1, (("outcome", "duplicate"),): 0},
            {(): 3}],
    }
    ages, limits = age_panel
    assert set(ages) == {(("__name__", "tau_last_cycle_age_seconds"), ("instance", g), job)
                         for g in ("api", "edge")}
    assert all(0 <= age < DEADLINE_S + 10 for age in ages.values()), ages
    assert set(limits.values()) == {86_400}
    assert time.monotonic() - started < 60

