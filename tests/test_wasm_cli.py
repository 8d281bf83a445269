"""The runbook's WASM packaging and inspect commands, and the smoke harness, run for real."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from builders import REPO, TESTDATA, run_cli

WASM_DIR = TESTDATA / "deployment-wasm"
EDGE = str(WASM_DIR / "edge-runtime.wasm")


def package(cwd: Path, *extra: str, module: str = EDGE) -> subprocess.CompletedProcess[str]:
    return run_cli("--deployment-state-dir", ".tau/deployment",
                   "--deployment-wasm-package-module", module, *extra, cwd=cwd)


def test_runbook_packaging_and_inspect_commands_print_json(tmp_path: Path) -> None:
    first = package(tmp_path, "--deployment-wasm-package-blueprint-id", "edge-wasm",
                    "--deployment-wasm-package-runtime-profile", "wasm-wasi",
                    "--deployment-wasm-package-output-dir", ".tau/deployment/wasm-artifacts",
                    "--deployment-wasm-package-json")
    assert (first.returncode, first.stderr) == (0, "")
    report = json.loads(first.stdout)
    sha = report["artifact_sha256"]
    folder = ".tau/deployment/wasm-artifacts/edge-wasm"
    assert report["manifest_path"] == f"{folder}/{sha}.manifest.json"
    assert report["compliance_reason_codes"] == ["abi_assumed_no_imports"]
    second = package(tmp_path, "--deployment-wasm-package-blueprint-id", "channel-automation-wasm",
                     "--deployment-wasm-package-runtime-profile", "channel-automation-wasi",
                     "--deployment-wasm-package-output-dir", ".tau/deployment/wasm-artifacts",
                     "--deployment-wasm-package-json")
    assert second.returncode == 0
    assert json.loads(second.stdout)["constraint_profile_id"] == "channel_automation_runtime_v1"
    inspected = run_cli("--deployment-wasm-inspect-manifest", report["manifest_path"],
                        "--deployment-wasm-inspect-json", cwd=tmp_path)
    assert inspected.returncode == 0
    body = json.loads(inspected.stdout)
    assert (body["compliant"], body["reason_codes"], body["constraint_profile_id"]) == (
        True, ["abi_assumed_no_imports"], "control_plane_gateway_v1")
    state = json.loads((tmp_path / ".tau/deployment/state.json").read_text())
    assert [d["blueprint_id"] for d in state["wasm_deliverables"]] == [
        "edge-wasm", "channel-automation-wasm"]  # in packaging order, as the seed


def test_text_output_and_env_defaults(tmp_path: Path) -> None:
    done = run_cli("--deployment-wasm-package-module", str(WASM_DIR / "component.wasm"),
                   cwd=tmp_path, env={"TAU_DEPLOYMENT_WASM_PACKAGE_BLUEPRINT_ID": "from-env",
                                      "TAU_DEPLOYMENT_WASM_PACKAGE_RUNTIME_PROFILE":
                                      "channel_automation_wasi"})
    assert done.returncode == 0, done.stderr
    data = (WASM_DIR / "component.wasm").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    folder = ".tau/deployment/wasm-artifacts/from-env"
    gates = ("no_native_process_exec,filesystem_limited_to_preopened_dirs,"
             "network_access_requires_host_capability,"
             "deterministic_time_requires_host_injection,channel_event_dispatch_host_capability")
    assert done.stdout.splitlines() == [  # the seed's line first, in its format
        f"deployment wasm package: blueprint_id=from-env "
        f"runtime_profile=channel_automation_wasi artifact_path={folder}/{sha}.wasm "
        f"artifact_sha256={sha} artifact_size_bytes={len(data)} "
        f"manifest_path={folder}/{sha}.manifest.json "
        f"state_path=.tau/deployment/state.json state_updated=true "
        f"constraint_profile_id=channel_automation_runtime_v1 compliance_reason_codes=none "
        f"constraints={gates}",
        f"wasm package: module_kind=component observed_import_modules=wasi:cli/exit@0.2.0 "
        f"source_module_path={WASM_DIR / 'component.wasm'}",
    ]
    inspected = run_cli("--deployment-wasm-inspect-manifest", f"{folder}/{sha}.manifest.json",
                        cwd=tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout.splitlines() == [
        f"deployment wasm inspect: manifest_path={folder}/{sha}.manifest.json "
        "blueprint_id=from-env runtime_profile=channel_automation_wasi "
        "constraint_profile_id=channel_automation_runtime_v1 "
        "constraint_target_role=channel_automation_runtime "
        "required_runtime_profile=channel_automation_wasi required_abi=wasi:* compliant=true "
        "reason_codes=none observed_import_modules=wasi:cli/exit@0.2.0 "
        f"required_feature_gates={gates} max_artifact_size_bytes=1048576",
        f"wasm inspect: module_kind=component artifact_path={folder}/{sha}.wasm "
        f"artifact_size_bytes={len(data)} capability_constraints={gates}",
    ]


def test_blueprint_id_with_spaces_is_trimmed_for_its_folder(tmp_path: Path) -> None:
    done = package(tmp_path, "--deployment-wasm-package-blueprint-id", " edge-wasm ")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / ".tau/deployment/wasm-artifacts").iterdir()) == [
        "edge-wasm"]
    assert done.stdout.startswith("deployment wasm package: blueprint_id=edge-wasm ")


def test_deeply_nested_or_device_manifest_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 1000 + "]" * 1000)
    for manifest in ("deep.json", "/dev/zero"):
        done = run_cli("--deployment-wasm-inspect-manifest", manifest, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.startswith("error: cannot read manifest") or \
            done.stderr.startswith("error: manifest deep.json is not valid JSON: nesting deeper")
        assert len(done.stderr.splitlines()) == 1


def test_non_compliant_module_exits_1_with_codes_in_error_and_json(tmp_path: Path) -> None:
    done = package(tmp_path, "--deployment-wasm-package-json",
                   module=str(WASM_DIR / "unlisted-import.wasm"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: module ")
    assert "reason_codes=import_module_not_allowlisted" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    body = json.loads(done.stdout)
    assert (body["compliant"], body["compliance_reason_codes"]) == (
        False, ["import_module_not_allowlisted"])
    assert not (tmp_path / ".tau").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deployment-wasm-package-module", "missing.wasm"], "cannot read module"),
        (["--deployment-wasm-package-module", str(WASM_DIR / "component.wat")],
         "is not WebAssembly"),
        (["--deployment-wasm-package-module", EDGE,
          "--deployment-wasm-package-runtime-profile", "native"], "unknown runtime profile"),
        (["--deployment-wasm-inspect-manifest", "missing.json"], "cannot read manifest"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(tmp_path: Path, args: list[str],
                                               message: str) -> None:
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr


def test_inspect_of_tampered_deliverable_prints_report_and_exits_1(tmp_path: Path) -> None:
    report = json.loads(package(tmp_path, "--deployment-wasm-package-json",
                                module=str(WASM_DIR / "wasi-p2-core.wasm")).stdout)
    artifact = tmp_path / report["artifact_path"]
    data = bytearray(artifact.read_bytes())
    data[20] ^= 0xFF
    artifact.write_bytes(bytes(data))
    text = run_cli("--deployment-wasm-inspect-manifest", report["manifest_path"], cwd=tmp_path)
    assert text.returncode == 1
    assert ("compliant=false reason_codes=artifact_sha256_mismatch,artifact_invalid_module "
            in text.stdout)
    assert "problem: artifact_sha256_mismatch: artifact sha256 is" in text.stdout
    assert "does not verify" in text.stderr
    as_json = run_cli("--deployment-wasm-inspect-manifest", report["manifest_path"],
                      "--deployment-wasm-inspect-json", cwd=tmp_path)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["reason_codes"][0] == "artifact_sha256_mismatch"


def test_wasm_smoke_subcommand_json_and_exit_status(tmp_path: Path) -> None:
    ok = run_cli("wasm-smoke", "--module", str(WASM_DIR / "component.wasm"),
                 "--expect-stopped", str(WASM_DIR / "infinite-loop.wasm"), "--fuel", "100000",
                 "--no-edge-probes", "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert (body["status"], body["passed"], body["stopped"]) == ("pass", 2, 1)
    runaway = run_cli("wasm-smoke", "--module", str(WASM_DIR / "infinite-loop.wasm"),
                      "--fuel", "100000", "--no-edge-probes", cwd=tmp_path)
    assert runaway.returncode == 1
    assert runaway.stdout.splitlines()[-1].startswith(
        "wasm smoke summary: status=fail modules=1 passed=0 failed=1 stopped=1 ")


def test_smoke_script_passes_from_a_fresh_checkout_layout() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    done = subprocess.run([str(REPO / "scripts/dev/wasm-smoke.sh")], cwd="/", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("wasm smoke summary: status=pass modules=6 passed=6 failed=0 "
                           "stopped=1 ")
    assert "deno=" in last and "wrangler=" in last
    assert "run=fuel_exhausted" in done.stdout
