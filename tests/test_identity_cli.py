"""The browser DID command line: runbook flags, did-sign/did-verify/did-resolve, docs commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import REPO, run_cli

from tau_ops.identity import (
    base58btc_encode,
    derive_identity,
    did_document,
    resolve_did_key,
    sign_challenge,
)

RUNBOOK_COMMAND = [
    "--deployment-wasm-browser-did-init",
    "--deployment-wasm-browser-did-method", "key",
    "--deployment-wasm-browser-did-network", "tau-devnet",
    "--deployment-wasm-browser-did-subject", "browser-agent",
    "--deployment-wasm-browser-did-entropy", "local-dev-seed",
    "--deployment-wasm-browser-did-output", ".tau/deployment/browser-did.json",
    "--deployment-wasm-browser-did-json",
]
RUNBOOK_DID = "did:key:z6Mkk75exxGYAwtXNe14TzN2kwEHnqYXDLu5jyVTDiXzrE95"
FINGERPRINT = "96ac18607f281f43ec4df74a38ae09a6327c46b2a5dbae37b00a09b5b7c05bb4"
INIT = "--deployment-wasm-browser-did-init"
ENTROPY = "--deployment-wasm-browser-did-entropy"


def _assert_one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


def test_runbook_command_runs_verbatim_and_prints_the_report(tmp_path: Path) -> None:
    result = run_cli(*RUNBOOK_COMMAND, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fragment = RUNBOOK_DID.removeprefix("did:key:")
    report = {
        "runtime": "wasm_browser",
        "interoperability_profile": "kamn_did_ed25519_hkdf_sha256_v1",
        "method": "key",
        "network": "tau-devnet",
        "subject": "browser-agent",
        "did": RUNBOOK_DID,
        "key_id": f"{RUNBOOK_DID}#{fragment}",
        "fingerprint": FINGERPRINT,
        "public_key_multibase": fragment,
        "output_path": ".tau/deployment/browser-did.json",
        "persisted": True,
    }
    assert json.loads(result.stdout) == report
    payload = json.loads((tmp_path / ".tau/deployment/browser-did.json").read_text())
    assert payload["identity"]["did"] == RUNBOOK_DID
    assert payload["did_document"] == resolve_did_key(RUNBOOK_DID)


def test_text_output_and_default_output_under_the_state_dir(tmp_path: Path) -> None:
    result = run_cli(INIT, ENTROPY, "local-dev-seed", "--deployment-state-dir", "st",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fragment = RUNBOOK_DID.removeprefix("did:key:")
    assert result.stdout.splitlines() == [
        f"deployment wasm browser did: runtime=wasm_browser "
        f"profile=kamn_did_ed25519_hkdf_sha256_v1 method=key did={RUNBOOK_DID} "
        f"key_id={RUNBOOK_DID}#{fragment} fingerprint={FINGERPRINT} "
        "output_path=st/browser-did.json persisted=true",
        f"browser did: did={RUNBOOK_DID} method=key network=tau-devnet subject=browser-agent",
        f"browser did key: key_id={RUNBOOK_DID}#{fragment} fingerprint={FINGERPRINT} "
        f"public_key_multibase={fragment}",
        "browser did payload: persisted=true output_path=st/browser-did.json "
        "runtime=wasm_browser interoperability_profile=kamn_did_ed25519_hkdf_sha256_v1",
    ]
    assert (tmp_path / "st" / "browser-did.json").is_file()


def test_entropy_is_required_and_nothing_is_written(tmp_path: Path) -> None:
    result = run_cli(INIT, cwd=tmp_path)
    _assert_one_error_line(result, "entropy", ENTROPY, "no default")
    assert not (tmp_path / ".tau").exists()


@pytest.mark.parametrize(("flag", "value", "field"), [
    ("--deployment-wasm-browser-did-network", "tau..devnet", "network"),
    ("--deployment-wasm-browser-did-network", "tau/devnet", "network"),
    ("--deployment-wasm-browser-did-subject", "-agent", "subject"),
    ("--deployment-wasm-browser-did-subject", "", "subject"),
    ("--deployment-wasm-browser-did-method", "peer", "method"),
    ("--deployment-wasm-browser-did-entropy", " ", "entropy"),
])
def test_bad_identifiers_exit_2_with_one_line_naming_the_field(
        tmp_path: Path, flag: str, value: str, field: str) -> None:
    result = run_cli(INIT, ENTROPY, "seed", flag, value, cwd=tmp_path)
    _assert_one_error_line(result, field, flag)
    assert not (tmp_path / ".tau").exists()


def test_entropy_from_the_environment_and_private_key_only_on_request(tmp_path: Path) -> None:
    env = {"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY": "local-dev-seed"}
    plain = run_cli(INIT, "--deployment-wasm-browser-did-json", cwd=tmp_path, env=env)
    assert json.loads(plain.stdout)["did"] == RUNBOOK_DID
    out = tmp_path / ".tau/deployment/browser-did.json"
    assert "private_key" not in json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o644

    secret = run_cli(INIT, "--deployment-wasm-browser-did-include-private-key",
                     "--deployment-wasm-browser-did-json", cwd=tmp_path, env=env)
    assert secret.returncode == 0, secret.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    jwk_d = json.loads(out.read_text())["private_key"]["private_key_jwk"]["d"]
    assert jwk_d not in secret.stdout and jwk_d not in secret.stderr
    assert json.loads(secret.stdout) == json.loads(plain.stdout)


def test_sign_then_verify_and_tamper_rejection(tmp_path: Path) -> None:
    signed = run_cli("did-sign", "--entropy", "local-dev-seed", "--challenge", "nonce 42",
                     "--json", cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    body = json.loads(signed.stdout)
    ident = derive_identity(method="key", network="tau-devnet", subject="browser-agent",
                            entropy="local-dev-seed")
    assert body == {"did": RUNBOOK_DID, "key_id": ident.key_id,
                    "signature": sign_challenge(ident, b"nonce 42")}
    ok = run_cli("did-verify", "--did", RUNBOOK_DID, "--challenge", "nonce 42",
                 "--signature", body["signature"], cwd=tmp_path)
    assert (ok.returncode, ok.stdout) == (0, f"did verify: did={RUNBOOK_DID} valid=true\n")
    bad = run_cli("did-verify", "--did", RUNBOOK_DID, "--challenge", "nonce 43",
                  "--signature", body["signature"], "--json", cwd=tmp_path)
    assert (bad.returncode, json.loads(bad.stdout)) == (1, {"did": RUNBOOK_DID, "valid": False})


def test_did_web_verifies_against_the_persisted_payload(tmp_path: Path) -> None:
    env = {"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY": "edge-seed"}
    init = run_cli(INIT, "--deployment-wasm-browser-did-method", "web",
                   "--deployment-wasm-browser-did-network", "edge.eu", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    did = "did:web:edge:eu:browser-agent"
    signed = run_cli("did-sign", "--method", "web", "--network", "edge.eu",
                     "--challenge", "hi", cwd=tmp_path, env=env)
    signature = signed.stdout.split("signature=")[1].strip()
    payload = tmp_path / ".tau/deployment/browser-did.json"
    ok = run_cli("did-verify", "--did", did, "--challenge", "hi", "--signature", signature,
                 "--document", payload, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    missing = run_cli("did-verify", "--did", did, "--challenge", "hi", "--signature", signature,
                      cwd=tmp_path)
    _assert_one_error_line(missing, "document")


@pytest.mark.parametrize("did", ["did:key:z6MkNOTBASE58l0", "did:example:123", "did:key:"])
def test_verify_refuses_a_malformed_did_with_exit_2(tmp_path: Path, did: str) -> None:
    result = run_cli("did-verify", "--did", did, "--challenge", "c", "--signature", "z1",
                     cwd=tmp_path)
    _assert_one_error_line(result, "did")


def test_resolve_prints_the_did_key_document(tmp_path: Path) -> None:
    result = run_cli("did-resolve", RUNBOOK_DID, cwd=tmp_path)
    ident = derive_identity(method="key", network="tau-devnet", subject="browser-agent",
                            entropy="local-dev-seed")
    assert (result.returncode, json.loads(result.stdout)) == (0, did_document(ident))


def _doc_commands() -> list[str]:
    text = (REPO / "docs" / "guides" / "browser-did.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands.extend(c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip())
    return commands


def test_every_command_in_the_guide_runs(tmp_path: Path) -> None:
    """Each command runs in order, in one folder, through a real shell (pipes, redirects)."""
    commands = _doc_commands()
    assert len(commands) >= 10
    bin_dir = str(Path(sys.executable).parent)  # the venv's tau-ops entry point
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    for command in commands:
        if command.startswith("node "):
            if shutil.which("node") is None:
                continue
            command = command.replace("scripts/", f"{shlex.quote(str(REPO))}/scripts/", 1)
        else:
            assert "tau-ops" in command or command.split()[0] in {"printf", "chmod"}, command
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{command}\n{result.stderr}"


# --- entropy kept off the command line ---------------------------------------

ENTROPY_FILE = "--deployment-wasm-browser-did-entropy-file"
JSON_FLAG = "--deployment-wasm-browser-did-json"


def _run_with_stdin(*args: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    return subprocess.run([sys.executable, "-m", "tau_ops", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_entropy_from_a_file_stdin_or_its_variable_gives_the_runbook_did(tmp_path: Path) -> None:
    secret = tmp_path / "entropy"
    secret.write_text("local-dev-seed\n")  # as `echo local-dev-seed > entropy` writes it
    secret.chmod(0o600)
    runs = [
        run_cli(INIT, ENTROPY_FILE, secret, JSON_FLAG, cwd=tmp_path),
        run_cli(INIT, JSON_FLAG, cwd=tmp_path,
                env={"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY_FILE": str(secret)}),
        _run_with_stdin(INIT, ENTROPY_FILE, "-", JSON_FLAG, stdin="local-dev-seed\n",
                        cwd=tmp_path),
        run_cli("did-sign", "--entropy-file", secret, "--challenge", "c", "--json",
                cwd=tmp_path),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert [json.loads(r.stdout)["did"] for r in runs] == [RUNBOOK_DID] * 4


def test_entropy_and_entropy_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "entropy"
    secret.write_text("a")
    result = run_cli(INIT, ENTROPY_FILE, secret, cwd=tmp_path,
                     env={"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY": "b"})
    _assert_one_error_line(result, ENTROPY, ENTROPY_FILE, "not both")
    assert not (tmp_path / ".tau").exists()


def test_an_entropy_file_that_is_a_fifo_or_missing_exits_2_naming_the_flag(
        tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _assert_one_error_line(run_cli(INIT, ENTROPY_FILE, fifo, cwd=tmp_path),
                           f"entropy file {fifo} is not a regular file (FIFO)", ENTROPY_FILE)
    _assert_one_error_line(run_cli(INIT, ENTROPY_FILE, "missing", cwd=tmp_path),
                           "cannot read entropy file missing", ENTROPY_FILE)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    _assert_one_error_line(run_cli(INIT, ENTROPY_FILE, empty, cwd=tmp_path),
                           f"entropy file {empty} holds no entropy", ENTROPY_FILE)


# --- payload files: sign and resolve, including tau-ops 0.1 files ------------


def test_did_sign_from_a_tau_ops_0_1_payload_with_its_private_key(tmp_path: Path) -> None:
    legacy = REPO / "testdata" / "did" / "tau-ops-0.1-key-with-private-key.json"
    from_payload = run_cli("did-sign", "--payload", legacy, "--challenge", "c", "--json",
                           cwd=tmp_path)
    from_inputs = run_cli("did-sign", "--entropy", "local-dev-seed", "--challenge", "c",
                          "--json", cwd=tmp_path)
    assert from_payload.returncode == 0, from_payload.stderr
    assert json.loads(from_payload.stdout) == json.loads(from_inputs.stdout)
    without_key = REPO / "testdata" / "did" / "tau-ops-0.1-web.json"
    _assert_one_error_line(run_cli("did-sign", "--payload", without_key, "--challenge", "c",
                                   cwd=tmp_path), "payload holds no private key")


def test_did_resolve_prints_the_document_of_a_payload(tmp_path: Path) -> None:
    for name in ("tau-ops-0.1-web.json", "tau-ops-0.1-key-with-private-key.json"):
        result = run_cli("did-resolve", "--payload", REPO / "testdata" / "did" / name,
                         cwd=tmp_path)
        value = json.loads((REPO / "testdata" / "did" / name).read_text())
        assert (result.returncode, json.loads(result.stdout)) == (0, value["did_document"])
    seed = run_cli("did-resolve", "--payload", REPO / "testdata" / "did" /
                   "seed-browser-did.json", cwd=tmp_path)
    _assert_one_error_line(seed, "written by the seed (profile kamn_browser_v1)")


# --- keys that cannot be forged ------------------------------------------------

IDENTITY_POINT_DID = "did:key:" + "z" + base58btc_encode(b"\xed\x01\x01" + bytes(31))
FORGED = "z" + base58btc_encode(b"\x01" + bytes(63))  # R = identity, S = 0


def test_a_small_order_did_key_exits_2_instead_of_verifying_a_forgery(tmp_path: Path) -> None:
    result = run_cli("did-verify", "--did", IDENTITY_POINT_DID, "--challenge", "anything",
                     "--signature", FORGED, cwd=tmp_path)
    _assert_one_error_line(result, "small-order point")
    off_curve = "did:key:z" + base58btc_encode(b"\xed\x01\x02" + bytes(31))
    _assert_one_error_line(run_cli("did-resolve", off_curve, cwd=tmp_path),
                           "not a point of the curve")


def test_a_hostile_document_is_refused_quickly(tmp_path: Path) -> None:
    did = "did:web:tau:devnet:browser-agent"
    document = {"id": did, "authentication": [f"{did}#primary"], "verificationMethod": [
        {"id": f"{did}#primary", "type": "Multikey", "controller": did,
         "publicKeyMultibase": "z" + "6" * 300_000}]}
    path = tmp_path / "did.json"
    path.write_text(json.dumps(document))
    started = time.perf_counter()
    result = run_cli("did-verify", "--did", did, "--document", path, "--challenge", "c",
                     "--signature", FORGED, cwd=tmp_path)
    assert time.perf_counter() - started < 10  # interpreter start-up included; was 17 s
    _assert_one_error_line(result, "over the 256-character limit")
