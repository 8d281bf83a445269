"""A fixture case naming a packaged manifest is evaluated against the verified manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import TESTDATA, fixture, malformed_case

from tau_ops.contract import load_fixture
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.wasm import package_module

WASM_DIR = TESTDATA / "deployment-wasm"


def manifest_case(manifest: str, expected_body: dict[str, Any], **over: Any) -> dict[str, Any]:
    case = {
        "case_id": "wasm-manifest", "deploy_target": "wasm", "runtime_profile": "wasm_wasi",
        "blueprint_id": "edge-wasm", "environment": "staging", "region": "eu-west-1",
        "wasm_manifest": manifest,
        "expected": {"outcome": "success", "status_code": 201, "error_code": "",
                     "response_body": expected_body},
    }
    case.update(over)
    return case


def write(tmp_path: Path, *cases: dict[str, Any]) -> Path:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture(*cases)))
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # wasm_manifest paths are relative to the working directory
    return tmp_path


def test_manifest_case_succeeds_and_rollout_carries_artifact_fields(workdir: Path) -> None:
    report = package_module(WASM_DIR / "wasi-p2-core.wasm", state_dir=Path("pkg"))
    manifest_rel = str(Path(report.manifest_path))
    assert not Path(manifest_rel).is_absolute()
    body = {
        "status": "accepted", "blueprint_id": "edge-wasm", "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi", "environment": "staging", "region": "eu-west-1",
        "replicas": 1, "rollout_strategy": "canary",
        "artifact": f"{report.artifact_sha256}.wasm",
        "artifact_sha256": report.artifact_sha256,
        "artifact_size_bytes": report.artifact_size_bytes,
        "artifact_manifest": manifest_rel,
        "runtime_constraints": report.capability_constraints,
    }
    fx = load_fixture(write(workdir, manifest_case(manifest_rel, body)))
    cycle = run_cycle(fx, RunnerConfig(state_dir=Path("state")))
    assert (cycle.applied_cases, cycle.wasm_rollouts) == (1, 1)
    rollout = json.loads(Path("state/state.json").read_text())["rollouts"][0]
    assert {k: rollout[k] for k in ("artifact", "artifact_sha256", "artifact_size_bytes",
                                    "artifact_manifest", "runtime_constraints")} == {
        "artifact": f"{report.artifact_sha256}.wasm",
        "artifact_sha256": report.artifact_sha256,
        "artifact_size_bytes": report.artifact_size_bytes,
        "artifact_manifest": manifest_rel,
        "runtime_constraints": report.capability_constraints,
    }


def rejected(manifest: str, status: int, error_code: str, reason: str) -> dict[str, Any]:
    return malformed_case(
        "wasm-manifest", status=status, error_code=error_code, reason=reason,
        deploy_target="wasm", runtime_profile="wasm_wasi", container_image="",
        wasm_manifest=manifest,
    )


def test_tampered_manifest_gives_invalid_wasm_manifest(workdir: Path) -> None:
    report = package_module(WASM_DIR / "wasi-p2-core.wasm", state_dir=Path("pkg"))
    artifact = Path(report.artifact_path)
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    case = rejected(report.manifest_path, 400, "deployment_missing_artifact",
                    "invalid_wasm_manifest")
    cycle = run_cycle(load_fixture(write(workdir, case)), RunnerConfig(state_dir=Path("state")))
    assert (cycle.malformed_cases, cycle.applied_cases) == (1, 0)


def test_missing_manifest_gives_invalid_wasm_manifest(workdir: Path) -> None:
    case = rejected("nowhere.manifest.json", 400, "deployment_missing_artifact",
                    "invalid_wasm_manifest")
    cycle = run_cycle(load_fixture(write(workdir, case)), RunnerConfig(state_dir=Path("state")))
    assert cycle.malformed_cases == 1


def test_channel_manifest_on_wasm_wasi_case_is_a_runtime_mismatch(workdir: Path) -> None:
    report = package_module(WASM_DIR / "component.wasm", state_dir=Path("pkg"),
                            runtime_profile="channel_automation_wasi")
    case = rejected(report.manifest_path, 422, "deployment_unsupported_runtime",
                    "wasm_manifest_runtime_mismatch")
    cycle = run_cycle(load_fixture(write(workdir, case)), RunnerConfig(state_dir=Path("state")))
    assert cycle.malformed_cases == 1
    assert json.loads(Path("state/state.json").read_text())["rollouts"] == []


@pytest.mark.parametrize("kind", ["nested", "device"])
def test_unloadable_manifest_gives_invalid_wasm_manifest(workdir: Path, kind: str) -> None:
    if kind == "nested":  # 1000 levels: a ManifestError from the JSON policy, not RecursionError
        Path("deep.manifest.json").write_text('{"a": ' * 1000 + "1" + "}" * 1000)
        manifest = "deep.manifest.json"
    else:  # never read: not a regular file
        manifest = "/dev/zero"
    case = rejected(manifest, 400, "deployment_missing_artifact", "invalid_wasm_manifest")
    cycle = run_cycle(load_fixture(write(workdir, case)), RunnerConfig(state_dir=Path("state")))
    assert (cycle.malformed_cases, cycle.applied_cases) == (1, 0)
