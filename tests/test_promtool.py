"""The shipped Prometheus rules: ``promtool check rules``, ``promtool test rules``, runbook text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from builders import REPO, run_guide

from tau_ops.health import ACTIONS

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian "
                                "package prometheus; .ci/run installs it)")
RULES = REPO / "deploy/prometheus/tau-ops-rules.yml"
RULE_TESTS = sorted((REPO / "deploy/prometheus/tests").glob("*.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def alerts() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def words(text: str) -> str:
    return " ".join(re.sub(r"[`.]", "", text).lower().split())


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 14 rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_the_rule_tests(tmp_path: Path) -> None:
    broken = tmp_path / "broken_test.yml"
    text = RULE_TESTS[0].read_text().replace("../tau-ops-rules.yml", str(RULES))
    broken.write_text(text.replace('summary: "edge failing: failure_streak=3"',
                                   'summary: "edge failing: failure_streak=4"'))
    result = promtool("test", "rules", broken)
    assert result.returncode == 1
    assert "TauHealthFailing" in result.stderr + result.stdout


def test_every_alert_is_unit_tested_and_carries_a_runbook_action() -> None:
    tested = {case["alertname"] for path in RULE_TESTS
              for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert tested == set(alerts())
    for name, rule in alerts().items():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert set(annotations) == {"summary", "runbook_action"}, name
        assert set(rule["labels"]) == {"severity"}, name  # type: ignore[arg-type]


def test_the_runbook_troubleshooting_actions_are_alert_annotations() -> None:
    table = ("case_processing_failed", "malformed_inputs_observed", "retry_attempted",
             "failing", "stale", "queue_backpressure_applied")
    annotated = {name: words(str(rule["annotations"]["runbook_action"]))  # type: ignore[index]
                 for name, rule in alerts().items()}
    found = {key: sorted(name for name, text in annotated.items() if words(ACTIONS[key]) in text)
             for key in table}
    assert found == {
        "case_processing_failed": ["TauCaseProcessingFailed"],
        "malformed_inputs_observed": ["TauMalformedInputs"],
        "retry_attempted": ["TauRetriesObserved"],
        "failing": ["TauHealthFailing"],
        "stale": ["TauStateStale"],
        "queue_backpressure_applied": ["TauBacklog"],
    }


def test_monitoring_guide_commands_run(tmp_path: Path) -> None:
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    exposition, rules = run_guide(REPO / "docs/guides/monitoring.md", tmp_path, timeout=60)
    runner, printed = exposition.stdout.split("\ntau_", 1)
    assert runner.startswith("deployment runner summary:")
    assert ("tau_" + printed).splitlines() == [
        'tau_state_valid 1.0', 'tau_rollout_gate{gate="pass"} 1.0',
        'tau_rollout_gate{gate="hold"} 0.0',
        *(f'tau_rollout_gate_reason{{reason="{r}"}} 0.0' for r in (
            "invalid_state", "no_cycle", "runner_paused", "clock_skew", "stale_state",
            "health_failing", "health_degraded")),
    ]
    assert "SUCCESS" in rules.stdout and "14 rules found" in rules.stdout
