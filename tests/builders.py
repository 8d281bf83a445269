"""Shared builders for tests: fixtures, cases and state dirs, written once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO / "testdata"
STRATEGY = {"kubernetes": "rolling", "container": "recreate", "wasm": "canary"}


def success_case(
    case_id: str,
    *,
    target: str = "kubernetes",
    runtime: str | None = None,
    blueprint_id: str = "cloud-api",
    environment: str = "staging",
    region: str = "us-east-1",
    replicas: int = 1,
    image: str = "ghcr.io/tau/app:1.0",
    module: str = "testdata/deployment-wasm/edge-runtime.wasm",
) -> dict[str, Any]:
    """A case expected to succeed, with the exact response body the contract produces."""
    runtime = runtime or ("wasm_wasi" if target == "wasm" else "native")
    artifact = module if target == "wasm" else image
    case: dict[str, Any] = {
        "schema_version": 1,
        "case_id": case_id,
        "deploy_target": target,
        "runtime_profile": runtime,
        "blueprint_id": blueprint_id,
        "environment": environment,
        "region": region,
        "replicas": replicas,
        "expected": {
            "outcome": "success",
            "status_code": 201 if target == "wasm" else 202,
            "error_code": "",
            "response_body": {
                "status": "accepted",
                "blueprint_id": blueprint_id,
                "deploy_target": target,
                "runtime_profile": runtime,
                "environment": environment,
                "region": region,
                "replicas": replicas,
                "rollout_strategy": STRATEGY[target],
                "artifact": artifact,
            },
        },
    }
    case["wasm_module" if target == "wasm" else "container_image"] = artifact
    return case


def malformed_case(
    case_id: str,
    *,
    status: int,
    error_code: str,
    reason: str,
    blueprint_id: str = "cloud-api",
    **fields: Any,
) -> dict[str, Any]:
    """A case expected to be rejected; ``fields`` override target, runtime, etc."""
    case: dict[str, Any] = {
        "schema_version": 1,
        "case_id": case_id,
        "deploy_target": "kubernetes",
        "runtime_profile": "native",
        "blueprint_id": blueprint_id,
        "environment": "staging",
        "region": "us-east-1",
        "container_image": "ghcr.io/tau/app:1.0",
    }
    case.update(fields)
    case["expected"] = {
        "outcome": "malformed_input",
        "status_code": status,
        "error_code": error_code,
        "response_body": {"status": "rejected", "reason": reason},
    }
    return case


def retryable_case(case_id: str, *, blueprint_id: str = "cloud-api") -> dict[str, Any]:
    """A case whose control plane is always unavailable (retried, then failed)."""
    return {
        "schema_version": 1,
        "case_id": case_id,
        "deploy_target": "kubernetes",
        "runtime_profile": "native",
        "blueprint_id": blueprint_id,
        "environment": "production",
        "region": "us-east-1",
        "container_image": "ghcr.io/tau/app:1.0",
        "simulate_retryable_failure": True,
        "expected": {
            "outcome": "retryable_failure",
            "status_code": 503,
            "error_code": "deployment_backend_unavailable",
            "response_body": {"status": "retryable", "reason": "control_plane_unavailable"},
        },
    }


def fixture(*cases: dict[str, Any], name: str = "test-fixture") -> dict[str, Any]:
    """A fixture document around ``cases``."""
    return {"schema_version": 1, "name": name, "cases": list(cases)}


def write_fixture(folder: Path, *cases: dict[str, Any], name: str = "fixture") -> Path:
    """Write a fixture file into ``folder`` and return its path."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(fixture(*cases, name=name), indent=2))
    return path


def run_cli(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``tau-ops`` (``python -m tau_ops``) in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tau_ops", *map(str, args)],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def event_line(
    timestamp_ms: int,
    health_state: str = "healthy",
    reason_codes: list[str] | None = None,
    *,
    health_reason: str = "",
    **counters: int,
) -> str:
    """One ``runtime-events.jsonl`` line as the runner writes it (compact JSON)."""
    from tau_ops.models import RuntimeEvent

    event = RuntimeEvent(
        timestamp_unix_ms=timestamp_ms,
        health_state=health_state,  # type: ignore[arg-type]
        health_reason=health_reason or f"{health_state} cycle",
        reason_codes=reason_codes or ["healthy_cycle"],
        **counters,
    )
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":"))


def write_event_log(path: Path, *lines: str, append: bool = False) -> Path:
    """Write (or append) event lines to ``path``, each exactly as given plus a newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path


def guide_blocks(guide: Path, language: str = "bash") -> list[str]:
    """The fenced ``language`` blocks of a markdown file, in order (indented ones too)."""
    import re

    pattern = rf"^ *```{language}\n(.*?)^ *```"
    return [
        "\n".join(line.strip() for line in block.splitlines())
        for block in re.findall(pattern, guide.read_text(), re.S | re.M)
    ]


def run_guide(guide: Path, workdir: Path, *, timeout: float = 120
              ) -> list[subprocess.CompletedProcess[str]]:
    """Run every bash block of ``guide`` in order in ``workdir`` (with a copy of testdata).

    Each block runs under ``set -euo pipefail`` in its own process group, which is
    killed afterwards, so a block that backgrounds a server never outlives it.
    """
    import contextlib
    import shutil
    import signal

    if not (workdir / "testdata").exists():
        shutil.copytree(TESTDATA, workdir / "testdata")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    results = []
    for number, block in enumerate(guide_blocks(guide), start=1):
        proc = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + block], cwd=workdir,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert result.returncode == 0, f"{guide.name} block {number}:\n{block}\n{err}"
        assert "Traceback" not in err, err
        results.append(result)
    return results
