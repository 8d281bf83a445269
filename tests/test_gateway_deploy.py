"""The Fly.io baseline: fly.toml's contract and the Dockerfile's user and start command."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import httpx
from builders import REPO, success_case
from test_gateway import cycles, gateway

FLY = REPO / "fly.toml"
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def test_fly_manifest_contract() -> None:
    manifest = tomllib.loads(FLY.read_text())
    assert manifest["app"] and isinstance(manifest["app"], str)
    assert manifest["build"] == {"dockerfile": "Dockerfile"}
    assert manifest["env"] == {
        "TAU_TRANSPORT_MODE": "gateway",
        "TAU_GATEWAY_OPENRESPONSES_BIND": "0.0.0.0:8080",
        "TAU_DEPLOYMENT_STATE_DIR": "/data/deployment",
    }
    service = manifest["http_service"]
    assert {k: service[k] for k in ("internal_port", "force_https", "auto_start_machines",
                                     "min_machines_running")} == {
        "internal_port": 8080, "force_https": True, "auto_start_machines": True,
        "min_machines_running": 1,
    }
    checks = service["checks"]
    assert [(c["protocol"], c["method"], c["path"]) for c in checks] == [
        ("http", "GET", "/gateway/status")]
    assert manifest["mounts"]["destination"] == "/data"
    assert "/data/" in manifest["env"]["TAU_DEPLOYMENT_STATE_DIR"] + "/"
    assert not any("API_KEY" in name for name in manifest["env"])


def test_dockerfile_runs_the_gateway_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmd = [rest for word, rest in stage if word == "CMD"]
    entrypoints = [rest for word, rest in stage if word == "ENTRYPOINT"]
    assert entrypoints == []
    assert json.loads(cmd[-1]) == ["tau-ops", "gateway", "serve"]
    runs = " ".join(rest for word, rest in stage if word == "RUN")
    assert "pip install" in runs and ".whl" in runs
    assert "EXPOSE" in {word for word, _ in stage}
    env = stage_env(stage)
    manifest_env = tomllib.loads(FLY.read_text())["env"]
    assert {k: env[k] for k in manifest_env} == manifest_env


def test_dockerfile_start_command_serves_the_gateway(tmp_path: Path) -> None:
    """Run the image's CMD with its ENV (bind and state dir moved to loopback and tmp)."""
    stage = final_stage()
    command = json.loads([rest for word, rest in stage if word == "CMD"][-1])
    assert command[0] == "tau-ops"
    state_dir = tmp_path / "deployment"
    cycles(state_dir, success_case("api"))
    env = {**stage_env(stage), "TAU_GATEWAY_OPENRESPONSES_BIND": "127.0.0.1:0",
           "TAU_DEPLOYMENT_STATE_DIR": str(state_dir)}
    with gateway(state_dir, env=env, command=tuple(command[1:]), flags=False) as gw:
        response = httpx.get(gw.url + "/gateway/status", timeout=10)
    assert (response.status_code, response.json()["rollout_gate"]) == (200, "pass")
