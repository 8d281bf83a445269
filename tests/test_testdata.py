"""The checked-in fixtures behave as their README says."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import TESTDATA, run_cli

CONTRACTS = TESTDATA / "deployment-contract"

INVALID = {
    "invalid-duplicate-case-id.json": "case 'cloud-api-production' field 'case_id'",
    "invalid-retry-flag-mismatch.json": "case 'cloud-api-production' field "
                                        "'simulate_retryable_failure'",
    "invalid-unsupported-target.json": "case 'cloud-api-production' field 'deploy_target'",
    "invalid-replicas.json": "case 'edge-wasm-staging' field 'replicas'",
    "invalid-empty-cases.json": "field 'cases'",
    "invalid-truncated.json": "invalid JSON",
}


def test_every_invalid_fixture_is_listed() -> None:
    assert sorted(p.name for p in CONTRACTS.glob("invalid-*.json")) == sorted(INVALID)


@pytest.mark.parametrize(("name", "fragment"), sorted(INVALID.items()))
def test_invalid_fixture_is_refused_with_one_line(tmp_path: Path, name: str,
                                                  fragment: str) -> None:
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", CONTRACTS / name)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fixture ") and fragment in lines[0]
    assert not (tmp_path / "s").exists()
