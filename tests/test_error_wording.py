"""Bad documents are explained in JSON terms, the same way by every reader (issue 13).

A schema error in a fixture, a state file, a DID payload or a fleet member
is worded by one function (``jsonio.describe_schema_error``): JSON notation
(``true``, ``"x"``, ``null``), never Python's (``True``, ``'x'``, ``None``),
and no library phrasing such as "Input should be a valid integer".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import fixture, success_case

PYTHON_WORDS = ("True", "False", "None", "Input should", "validation error", "pydantic")


def tau(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tau_ops", *argv], cwd=cwd, text=True,
                          capture_output=True, timeout=120, check=False)


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc[part]
    doc[last] = value


@pytest.mark.parametrize(("path", "value", "message"), [
    ("replicas", True, "field 'replicas': must be an integer (got true)"),
    ("replicas", "3", "field 'replicas': must be an integer (got \"3\")"),
    ("replicas", 2.5, "field 'replicas': must be an integer (got 2.5)"),
    ("region", None, "field 'region': must be a string (got null)"),
    ("region", [1], "field 'region': must be a string (got [1])"),
    ("expected.status_code", False, "field 'expected.status_code': must be an integer (got false)"),
    ("expected.outcome", "weird",
     "field 'expected.outcome': must be one of \"success\", \"malformed_input\" or "
     "\"retryable_failure\" (got \"weird\")"),
])
def test_fixture_case_errors_read_as_json(tmp_path: Path, path: str, value: Any,
                                          message: str) -> None:
    case = success_case("c1")
    _set(case, path, value)
    (tmp_path / "f.json").write_text(json.dumps(fixture(case)))
    result = tau("--deployment-contract-runner", "--deployment-fixture", "f.json",
                 "--deployment-state-dir", "st", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2, f"error: fixture f.json: case 'c1' {message}\n")
    assert not any(word in result.stderr for word in PYTHON_WORDS)


def test_a_corrupt_state_file_says_which_field_and_why(tmp_path: Path) -> None:
    state = tmp_path / "st"
    state.mkdir()
    (state / "state.json").write_text(json.dumps(
        {"schema_version": 1, "processed_case_keys": [], "rollouts": [],
         "health": {"failure_streak": True}}))
    result = tau("--deployment-status-inspect", "--deployment-state-dir", "st", cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "field 'health.failure_streak': must be an integer (got true)" in result.stderr
    assert not any(word in result.stderr for word in PYTHON_WORDS)


def test_a_did_payload_with_a_wrong_type_is_worded_in_json(tmp_path: Path) -> None:
    made = tau("--deployment-wasm-browser-did-init", "--deployment-state-dir", "st",
               "--deployment-wasm-browser-did-entropy", "tau-entropy-0001", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    payload_path = next((tmp_path / "st").rglob("*.json"))
    payload = json.loads(payload_path.read_text())
    payload["identity"]["did"] = 5
    payload_path.write_text(json.dumps(payload))
    from tau_ops.errors import IdentifierError
    from tau_ops.identity.payload import load_did_payload

    with pytest.raises(IdentifierError) as info:
        load_did_payload(payload_path)
    assert "field 'identity.did' must be a string (got 5)" in str(info.value)
    assert not any(word in str(info.value) for word in PYTHON_WORDS)


def test_a_state_value_outside_the_seeds_type_is_an_invalid_state(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    record = {"case_key": "k", "case_id": "c", "deploy_target": "kubernetes",
              "runtime_profile": "native", "blueprint_id": "b", "environment": "staging",
              "region": "r", "artifact": "a", "replicas": 1, "rollout_strategy": "rolling",
              "status_code": 10**40, "outcome": "success", "updated_unix_ms": 1}
    (state / "state.json").write_text(json.dumps(
        {"schema_version": 1, "processed_case_keys": [], "rollouts": [record], "health": {}}))
    result = tau("--deployment-status-inspect", "--deployment-state-dir", "s", cwd=tmp_path)
    assert result.returncode == 2
    assert ("field 'rollouts.0.status_code': must be <= 65535 (got 1" in result.stderr)
