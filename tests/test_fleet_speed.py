"""Fleet scale: what ``tau-ops fleet gate`` loads at start, and reading each member once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import REPO, success_case, write_fixture

from tau_ops import jsonio
from tau_ops.contract import load_fixture
from tau_ops.errors import UsageError
from tau_ops.fleet import fleet_status
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.state import PAUSE_FILE

# Libraries and tau-ops modules a fleet verdict over state dirs never needs.
NOT_FOR_STATE_DIRS = (
    "altair", "cryptography", "duckdb", "ipywidgets", "polars", "pyarrow", "starlette",
    "uvicorn", "wasmtime", "http.client", "ssl", "urllib.request", "tarfile",
    "tau_ops.analysis", "tau_ops.channel_store", "tau_ops.contract", "tau_ops.gateway",
    "tau_ops.identity", "tau_ops.ops", "tau_ops.runner", "tau_ops.status", "tau_ops.wasm",
    "tau_ops.widgets",
)


def _healthy(root: Path, name: str) -> Path:
    state_dir = root / name / "deployment"
    state_dir.parent.mkdir(parents=True)
    path = write_fixture(state_dir.parent, success_case(f"api-{name}"), name=f"fx-{name}")
    run_cycle(load_fixture(path), RunnerConfig(state_dir=state_dir))
    return state_dir


def _imported_by(*args: str) -> tuple[int, list[str]]:
    """Exit status and every module the real ``python -m tau_ops ARGS`` imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tau_ops", *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    names = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    return result.returncode, names[1:]  # the first line is the column header


def _unneeded(names: list[str], unneeded: tuple[str, ...]) -> list[str]:
    return sorted({n for n in names for u in unneeded if n == u or n.startswith(u + ".")})


def test_fleet_gate_over_state_dirs_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    _healthy(tmp_path, "iad")
    _healthy(tmp_path, "fra")
    code, names = _imported_by("fleet", "gate", str(tmp_path / "*" / "deployment"))
    assert (code, _unneeded(names, NOT_FOR_STATE_DIRS)) == (0, [])
    assert "tau_ops.fleet" in names


def test_fleet_gate_over_a_gateway_loads_the_http_client_but_no_server_or_engine() -> None:
    # Nothing listens on port 9 of loopback: the member is unreadable, the fleet holds.
    code, names = _imported_by("fleet", "gate", "--timeout-s", "2",
                               "http://127.0.0.1:9/gateway/status")
    heavy = tuple(n for n in NOT_FOR_STATE_DIRS
                  if n not in ("http.client", "urllib.request", "ssl"))
    assert (code, _unneeded(names, heavy)) == (1, [])
    assert "urllib.request" in names


def test_each_member_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = [_healthy(tmp_path, f"m{i}") for i in range(3)]
    (members[1] / PAUSE_FILE).write_text('{"paused_by": "ops"}')
    reads: list[str] = []
    real = jsonio.read_bounded

    def counting(path: Path | str, *, max_bytes: int, what: str) -> bytes:
        reads.append(Path(path).relative_to(tmp_path).as_posix())
        return real(path, max_bytes=max_bytes, what=what)

    monkeypatch.setattr(jsonio, "read_bounded", counting)
    report = fleet_status([str(tmp_path / "*" / "deployment")], max_workers=1)
    assert [m.rollout_gate_reasons for m in report.members] == [[], ["runner_paused"], []]
    assert sorted(reads) == ["m0/deployment/state.json", "m1/deployment/state.json",
                             "m2/deployment/state.json"]


def test_a_pause_marker_that_cannot_be_read_pauses_the_member_as_status_says(
        tmp_path: Path) -> None:
    from tau_ops.status import deployment_status

    member = _healthy(tmp_path, "iad")
    os.mkfifo(member / PAUSE_FILE)  # unreadable without blocking: still a marker
    status = deployment_status(member)
    row = fleet_status([str(member)]).members[0]
    assert (row.readable, row.rollout_gate, row.rollout_gate_reasons) == (
        True, status.rollout_gate, status.rollout_gate_reasons)
    assert row.rollout_gate_reasons == ["runner_paused"]


def test_the_subcommand_table_names_each_subcommand_of_its_own_module() -> None:
    from tau_ops import cli

    found = {name: module for module in cli.FEATURE_MODULES
             for name in getattr(cli, module).SUBCOMMANDS}
    assert found == cli.SUBCOMMAND_MODULES


def test_one_state_dir_reached_through_a_link_is_one_member(tmp_path: Path) -> None:
    member = _healthy(tmp_path, "iad")
    (tmp_path / "alias").symlink_to(member.parent)
    with pytest.raises(UsageError, match="list each member once"):
        fleet_status([str(member), str(tmp_path / "alias" / "deployment")])
