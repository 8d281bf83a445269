"""``GET /metrics``: names by the Prometheus conventions, values per state, ``promtool`` clean."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from builders import REPO, fixture, retryable_case, success_case
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tau_ops import __version__
from tau_ops.clock import FakeClock
from tau_ops.contract import parse_fixture
from tau_ops.gateway import create_app
from tau_ops.gateway.metrics import GATE_REASONS, rollout_gate_reasons
from tau_ops.ops import pause_runner
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.status import deployment_status_at, read_status_inputs

NOW = 1_700_000_000_000
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed "
                                    "(Debian package prometheus; .ci/run installs it)")
Values = dict[str, dict[tuple[tuple[str, str], ...], float]]


def cycle(state_dir: Path, *cases: dict[str, object], times: int = 1) -> None:
    clock = FakeClock(NOW - 60_000)
    for _ in range(times):
        run_cycle(parse_fixture(json.dumps(fixture(*cases))), RunnerConfig(state_dir=state_dir),
                  clock=clock, sleeper=clock.sleep)


def scrape(state_dir: Path, *, stale_after_ms: int = 86_400_000,
           accept: str = "") -> tuple[str, str]:
    """(body, content type) of ``GET /metrics`` through the real app, judged at NOW."""
    from test_gateway_app import call

    app = create_app(state_dir=state_dir, clock=FakeClock(NOW), stale_after_ms=stale_after_ms)
    headers = {"Accept": accept} if accept else {}
    [response] = call(app, ("/metrics", headers))
    assert response.status_code == 200
    return response.text, response.headers["content-type"]


def values(text: str) -> Values:
    found: Values = {}
    for family in text_string_to_metric_families(text):
        assert family.type in {"gauge", "info"}, family
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def gate_of(found: Values) -> tuple[str, list[str]]:
    gate = [dict(k)["gate"] for k, v in found["tau_rollout_gate"].items() if v == 1]
    reasons = [dict(k)["reason"] for k, v in found["tau_rollout_gate_reason"].items() if v == 1]
    assert len(gate) == 1
    return gate[0], sorted(reasons, key=GATE_REASONS.index)


def build(kind: str, root: Path) -> tuple[Path, int]:
    """A state dir in the named condition, and the staleness limit to judge it with."""
    state_dir = root / kind
    if kind == "fresh":
        return state_dir, 86_400_000
    if kind in ("healthy", "stale", "paused", "corrupt"):
        cycle(state_dir, success_case("api"))
    elif kind == "degraded":
        cycle(state_dir, success_case("api"), retryable_case("flaky"))
    elif kind == "failing":
        cycle(state_dir, success_case("api"), retryable_case("flaky"), times=3)
    if kind == "paused":
        pause_runner(state_dir, reason="incident 42", clock=FakeClock(NOW))
    if kind == "corrupt":
        (state_dir / "state.json").write_text("{not json")
    return state_dir, 1_000 if kind == "stale" else 86_400_000


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)


def test_healthy_state_exposes_every_family_by_the_conventions(tmp_path: Path) -> None:
    state_dir, _ = build("healthy", tmp_path)
    text, content_type = scrape(state_dir)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert values(text) == {
        "tau_build_info": {(("version", __version__),): 1},
        "tau_state_exists": {(): 1},
        "tau_state_valid": {(): 1},
        "tau_rollout_gate": {(("gate", "pass"),): 1, (("gate", "hold"),): 0},
        "tau_rollout_gate_reason": {(("reason", r),): 0 for r in GATE_REASONS},
        "tau_health_state": {(("state", "healthy"),): 1, (("state", "degraded"),): 0,
                             (("state", "failing"),): 0},
        "tau_failure_streak": {(): 0},
        "tau_queue_depth": {(): 0},
        "tau_active_runs": {(): 0},
        "tau_state_stale": {(): 0},
        "tau_last_cycle_age_seconds": {(): 60},
        "tau_stale_after_seconds": {(): 86_400},
        "tau_last_cycle_timestamp_seconds": {(): (NOW - 60_000) / 1000},
        "tau_last_cycle_duration_seconds": {(): 0},
        "tau_last_cycle_discovered_cases": {(): 1},
        "tau_last_cycle_cases": {(("outcome", "applied"),): 1, (("outcome", "malformed"),): 0,
                                 (("outcome", "failed"),): 0, (("outcome", "duplicate"),): 0},
        "tau_last_cycle_retry_attempts": {(): 0},
        "tau_rollout_records": {(("deploy_target", "kubernetes"),): 1},
        "tau_rollout_replicas": {(): 1},
        "tau_processed_case_keys": {(): 1},
        "tau_wasm_deliverables": {(): 0},
        "tau_event_log_files": {(): 1},
        "tau_event_log_cycle_reports": {(): 1},
        "tau_event_log_invalid_lines": {(): 0},
        "tau_event_log_reason_code_cycles": {(("reason_code", "cloud_rollout_applied"),): 1},
        "tau_last_cycle_reason_code": {(("reason_code", "cloud_rollout_applied"),): 1},
    }


def test_retries_are_not_counted_as_cases(tmp_path: Path) -> None:
    state_dir, _ = build("degraded", tmp_path)
    found = values(scrape(state_dir)[0])
    assert found["tau_last_cycle_cases"] == {
        (("outcome", "applied"),): 1, (("outcome", "malformed"),): 0,
        (("outcome", "failed"),): 1, (("outcome", "duplicate"),): 0}
    assert found["tau_last_cycle_retry_attempts"] == {(): 3}
    assert found["tau_failure_streak"] == {(): 1}


EXPECTED_GATE = {
    "fresh": ("hold", ["no_cycle"]),
    "healthy": ("pass", []),
    "degraded": ("hold", ["health_degraded"]),
    "failing": ("hold", ["health_failing"]),
    "stale": ("hold", ["stale_state"]),
    "corrupt": ("hold", ["invalid_state"]),
}


@needs_promtool
@pytest.mark.parametrize(
    "kind", ["fresh", "healthy", "degraded", "failing", "stale", "paused", "corrupt"])
def test_every_state_passes_promtool_and_shows_the_gate_with_its_reasons(
        tmp_path: Path, kind: str) -> None:
    state_dir, stale_after_ms = build(kind, tmp_path)
    text, _ = scrape(state_dir, stale_after_ms=stale_after_ms)
    checked = promtool_check(text)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    gate, reasons = gate_of(values(text))
    if kind == "paused":  # held exactly when the status report lists runner_paused
        report = deployment_status_at(read_status_inputs(state_dir), now_ms=NOW)
        expected = rollout_gate_reasons(report)
        assert (gate, reasons) == ("hold" if expected else "pass", expected)
    else:
        assert (gate, reasons) == EXPECTED_GATE[kind]


def test_a_corrupt_state_gives_only_validity_and_the_held_gate(tmp_path: Path) -> None:
    state_dir, _ = build("corrupt", tmp_path)
    found = values(scrape(state_dir)[0])
    assert found == {
        "tau_build_info": {(("version", __version__),): 1},
        "tau_state_exists": {(): 1},
        "tau_state_valid": {(): 0},
        "tau_rollout_gate": {(("gate", "pass"),): 0, (("gate", "hold"),): 1},
        "tau_rollout_gate_reason": {(("reason", r),): float(r == "invalid_state")
                                    for r in GATE_REASONS},
    }


def test_a_missing_state_says_so_and_holds(tmp_path: Path) -> None:
    found = values(scrape(tmp_path / "none")[0])
    assert (found["tau_state_exists"], found["tau_state_valid"]) == ({(): 0}, {(): 1})
    assert found["tau_last_cycle_age_seconds"] == {(): 0}
    assert found["tau_state_stale"] == {(): 1}


@needs_promtool
def test_the_old_names_that_failed_promtool_are_gone(tmp_path: Path) -> None:
    state_dir, _ = build("failing", tmp_path)
    text, _ = scrape(state_dir)
    names = set(values(text))
    assert not names & {"tau_rollout_count", "tau_cycles", "tau_rollouts", "tau_event_files",
                        "tau_deployment_state_readable", "tau_state_age_seconds"}
    old = "# HELP tau_rollout_count n\n# TYPE tau_rollout_count gauge\ntau_rollout_count 1\n"
    assert promtool_check(old).returncode != 0  # the checker does catch the old fault


def test_openmetrics_is_served_when_the_scraper_asks(tmp_path: Path) -> None:
    state_dir, _ = build("healthy", tmp_path)
    accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    text, content_type = scrape(state_dir, accept=accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["tau_build"].type == "info"
    assert families["tau_last_cycle_age_seconds"].unit == ""
    assert families["tau_rollout_gate"].samples[0].labels == {"gate": "pass"}
    plain = values(scrape(state_dir)[0])
    assert {s.name for f in families.values() for s in f.samples} == set(plain)


def test_gate_reasons_come_from_the_report_when_it_lists_them(tmp_path: Path) -> None:
    state_dir, _ = build("healthy", tmp_path)
    report = deployment_status_at(read_status_inputs(state_dir), now_ms=NOW)
    listed = report.model_copy(update={"rollout_gate_reasons": ["runner_paused", "clock_skew"]})
    assert rollout_gate_reasons(report) == []
    assert rollout_gate_reasons(listed) == ["runner_paused", "clock_skew"]
    assert rollout_gate_reasons(None) == ["invalid_state"]


def test_fly_scrapes_the_gateway_metrics() -> None:
    manifest = tomllib.loads((REPO / "fly.toml").read_text())
    assert manifest["metrics"] == {"port": manifest["http_service"]["internal_port"],
                                   "path": "/metrics"}
    bind_port = manifest["env"]["TAU_GATEWAY_OPENRESPONSES_BIND"].rsplit(":", 1)[1]
    assert manifest["metrics"]["port"] == int(bind_port)


def test_dashboard_imports_with_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/tau-ops.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource", "prometheus")
    assert variables["instance"]["allValue"] == ".*"
    source = {"type": "prometheus", "uid": "${datasource}"}
    titles = []
    for panel in dashboard["panels"]:
        titles.append(panel["title"])
        assert panel["datasource"] == source
        assert panel["targets"] and all(t["datasource"] == source for t in panel["targets"])
        assert all('instance=~"$instance"' in t["expr"] for t in panel["targets"])
    assert len(set(titles)) == len(titles) == 9
    assert len({p["id"] for p in dashboard["panels"]}) == 9


def test_a_reused_exposition_never_hides_a_changed_gate(tmp_path: Path) -> None:
    from test_gateway_app import call

    state_dir, _ = build("healthy", tmp_path)  # last cycle at NOW - 60 s
    clock = FakeClock(NOW)
    app = create_app(state_dir=state_dir, clock=clock, stale_after_ms=60_300)
    first, same_second, stale, next_second = call(
        app, ("/metrics", {}), lambda: clock.advance(200), ("/metrics", {}),
        lambda: clock.advance(200), ("/metrics", {}), lambda: clock.advance(700),
        ("/metrics", {}))
    assert same_second.content == first.content
    assert gate_of(values(first.text)) == ("pass", [])
    assert gate_of(values(stale.text)) == ("hold", ["stale_state"])
    ages = [values(r.text)["tau_last_cycle_age_seconds"] for r in (stale, next_second)]
    assert ages == [{(): 60}, {(): 61}]
