"""Exit statuses and flags a script can trust: 0/1/2/70, TAU_* variables, booleans, ranges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import REPO, TESTDATA, retryable_case, run_cli, write_fixture

PASS = TESTDATA / "deployment-contract/rollout-pass.json"
MODULE = TESTDATA / "deployment-wasm/wasi-preview1.wasm"


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _run_with_broken_subcommand(body: str) -> subprocess.CompletedProcess[str]:
    """The real ``main`` with one subcommand whose body is ``body`` (it must raise)."""
    script = (
        "import sys, tau_ops.cli as cli\n"
        "def broken(argv):\n"
        f"    {body}\n"
        "cli.ops.SUBCOMMANDS['broken'] = broken\n"
        "sys.exit(cli.main(['broken']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_internal_error_exits_70_not_1() -> None:
    result = _run_with_broken_subcommand("return {}['missing']")
    assert (result.returncode, result.stdout) == (70, "")
    assert one_error_line(result.stderr) == (
        "error: internal error: KeyError: 'missing' (set TAU_OPS_DEBUG=1 for a traceback)")


def test_rust_panic_from_a_dependency_exits_70_with_one_line() -> None:
    """polars' PanicException derives from BaseException, not Exception."""
    result = _run_with_broken_subcommand(
        "import polars; raise polars.exceptions.PanicException('index out of bounds')")
    assert result.returncode == 70
    assert one_error_line(result.stderr) == (
        "error: internal error: PanicException: index out of bounds "
        "(set TAU_OPS_DEBUG=1 for a traceback)")


def test_repeatable_flags_take_pathsep_lists_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("gate", "--deployment-state-dir", tmp_path / "s", "--evidence-dir",
                     tmp_path / "e", "--json",
                     env={"TAU_FIXTURE": f"{PASS}{os.pathsep}{PASS}"})
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert ([s["fixture"] for s in verdict["steps"]], verdict["verdict"]) == (
        [str(PASS), str(PASS)], "pass")


@pytest.mark.parametrize("listed", [os.pathsep, f"{PASS}{os.pathsep}", f"{os.pathsep}{PASS}"])
def test_an_empty_entry_in_an_environment_list_is_bad_input(tmp_path: Path, listed: str) -> None:
    result = run_cli("gate", "--deployment-state-dir", tmp_path / "s", "--evidence-dir",
                     tmp_path / "e", env={"TAU_FIXTURE": listed})
    assert (result.returncode, one_error_line(result.stderr)) == (
        2, "error: environment variable TAU_FIXTURE (--fixture): has an empty entry in its "
           f"'{os.pathsep}'-separated list")
    assert not (tmp_path / "s").exists()


def test_wasm_smoke_modules_and_preopen_dirs_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("wasm-smoke", "--no-edge-probes", "--json",
                     "--deployment-state-dir", tmp_path / "s",
                     env={"TAU_MODULE": f"{MODULE}{os.pathsep}{MODULE}",
                          "TAU_PREOPEN_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert ([m["path"] for m in report["modules"]], report["status"]) == (
        [str(MODULE), str(MODULE)], "pass")


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["gate"], {"TAU_DEPLOYMENT_QUEUE_LIMIT": "0"},
     "error: environment variable TAU_DEPLOYMENT_QUEUE_LIMIT (--deployment-queue-limit): "
     "must be between 1 and 65536, got 0"),
    (["wasm-smoke"], {"TAU_MEMORY_MIB": "lots"},
     "error: environment variable TAU_MEMORY_MIB (--memory-mib): "
     "expected a whole number, got 'lots'"),
    (["report"], {"TAU_FORMAT": "gif", "TAU_OUTPUT": "out"},
     "error: environment variable TAU_FORMAT (--format): "
     "invalid choice 'gif' (choose from svg, png)"),
    (["--deployment-status-inspect"], {"TAU_DEPLOYMENT_STATUS_JSON": "1"},
     "error: environment variable TAU_DEPLOYMENT_STATUS_JSON (--deployment-status-json): "
     "expected true or false, got '1'"),
])
def test_a_bad_environment_value_is_exit_2_naming_the_variable(
        tmp_path: Path, argv: list[str], env: dict[str, str], message: str) -> None:
    result = run_cli(*argv, "--deployment-state-dir", tmp_path / "s", env=env)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == message


def test_a_required_option_can_come_from_the_environment() -> None:
    result = run_cli("did-sign", "--entropy", "e", env={"TAU_CHALLENGE": "hello"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("did sign: did=did:key:z")


def test_boolean_flags_take_the_seeds_forms(tmp_path: Path) -> None:
    state = tmp_path / "s"
    from_env = run_cli("--deployment-runner-json", env={
        "TAU_DEPLOYMENT_CONTRACT_RUNNER": "true", "TAU_DEPLOYMENT_FIXTURE": str(PASS),
        "TAU_DEPLOYMENT_STATE_DIR": str(state)})
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout)["applied_cases"] == 3
    as_json = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                      "--deployment-status-json=true")
    assert json.loads(as_json.stdout)["rollout_count"] == 3
    env_true = {"TAU_DEPLOYMENT_STATUS_JSON": "true"}
    text = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                   "--deployment-status-json=false", env=env_true)
    assert text.stdout.startswith("deployment status inspect: ")
    from_env_json = run_cli("--deployment-state-dir", state, "--deployment-status-inspect",
                            env=env_true)
    assert json.loads(from_env_json.stdout)["rollout_count"] == 3
    off = run_cli("--deployment-state-dir", state,
                  env={"TAU_DEPLOYMENT_STATUS_INSPECT": "false"})
    assert (off.returncode, one_error_line(off.stderr)[:20]) == (2, "error: nothing to do")


def test_boolean_flag_with_another_spelling_is_exit_2() -> None:
    result = run_cli("--deployment-status-inspect", "--deployment-status-json=yes")
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (
        "error: argument --deployment-status-json: expected true or false, got 'yes'")


def test_a_boolean_flag_before_a_positional_does_not_swallow_it(tmp_path: Path) -> None:
    result = run_cli("runner", "--json", "status", "--deployment-state-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["paused"] is False


@pytest.mark.parametrize(("argv", "message"), [
    (["--deployment-retry-max-attempts", "100000000000000000000000"],
     "argument --deployment-retry-max-attempts: must be between 1 and 100, "
     "got 100000000000000000000000"),
    (["--deployment-retry-base-delay-ms", "1e20"],
     "argument --deployment-retry-base-delay-ms: expected a whole number, got '1e20'"),
    (["--deployment-retry-base-delay-ms", "100000000000000000000"],
     "argument --deployment-retry-base-delay-ms: must be between 0 and 60000 ms, "
     "got 100000000000000000000"),
    (["--deployment-queue-limit", "65537"],
     "argument --deployment-queue-limit: must be between 1 and 65536, got 65537"),
    (["--deployment-processed-case-cap", "-1"],
     "argument --deployment-processed-case-cap: expected a whole number, got '-1'"),
    (["--deployment-stale-after-ms", "99999999999999999999"],
     "argument --deployment-stale-after-ms: must be between 0 and 31622400000 ms, "
     "got 99999999999999999999"),
])
def test_out_of_range_runner_values_are_exit_2(tmp_path: Path, argv: list[str],
                                               message: str) -> None:
    fixture = write_fixture(tmp_path, retryable_case("r1"))
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", fixture, *argv, timeout=60)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f"error: {message}"
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--memory-mib", "4097"], "argument --memory-mib: must be between 1 and 4096 MiB, got 4097"),
    (["--probe-timeout-s", "0"], "argument --probe-timeout-s: must be between 1 and 600 s, got 0"),
    (["--fuel", "0"], "argument --fuel: must be between 1 and 10000000000, got 0"),
])
def test_out_of_range_smoke_values_are_exit_2(argv: list[str], message: str) -> None:
    result = run_cli("wasm-smoke", *argv)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f"error: {message}"


@pytest.mark.parametrize(("argv", "flag"), [
    (["--deployment-wasm-browser-did-init", "--deployment-wasm-browser-did-entropy",
      "seed-\udcff\udcfe"], "--deployment-wasm-browser-did-entropy"),
    (["--deployment-state-dir", "/tmp/state-\udcff", "--deployment-contract-runner",
      "--deployment-fixture", str(PASS)], "--deployment-state-dir"),
    (["did-sign", "--entropy", "e", "--challenge", "\udcff"], "--challenge"),
    (["did-resolve", "did:key:\udcff"], "did"),
])
def test_non_utf8_arguments_are_refused_naming_the_flag(argv: list[str], flag: str) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f"error: argument {flag}: is not valid UTF-8"


def test_non_utf8_environment_value_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY": "seed-\udcff"}
    result = subprocess.run(
        [sys.executable, "-m", "tau_ops", "--deployment-wasm-browser-did-init",
         "--deployment-state-dir", str(tmp_path)],
        cwd=REPO, env={**{k: v for k, v in os.environ.items() if not k.startswith("TAU_")},
                       **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (
        "error: environment variable TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY "
        "(--deployment-wasm-browser-did-entropy): is not valid UTF-8")
    assert list(tmp_path.iterdir()) == []
