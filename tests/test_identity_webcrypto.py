"""Portability: a WebCrypto-only Node script derives the same key, DID and signature as Python."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from builders import REPO

from tau_ops.identity import derive_identity, sign_challenge
from tau_ops.identity.entropy import read_entropy

SCRIPT = REPO / "scripts" / "did" / "derive-did.mjs"
PROBE = ("crypto.subtle.generateKey({name: 'Ed25519'}, false, ['sign'])"
         ".then(() => process.exit(0), () => process.exit(3))")


@cache
def _node_problem() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed, so the WebCrypto derivation cannot be cross-checked"
    probe = subprocess.run([node, "--input-type=module", "-e", PROBE], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        return "this node's WebCrypto has no Ed25519 (needs Node 20 or newer)"
    return None


def _node(*args: str) -> subprocess.CompletedProcess[str]:
    problem = _node_problem()
    if problem:
        pytest.skip(problem)
    return subprocess.run(["node", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30, cwd=REPO)


@pytest.mark.parametrize(("method", "network", "subject", "entropy"), [
    ("key", "tau-devnet", "browser-agent", "local-dev-seed"),
    ("web", "Tau.Devnet", "browser-agent", "local-dev-seed"),
    ("key", "edge.eu-west", "worker-7", "correct horse battery staple"),
    ("web", "a.b", "c", "ünïcødé entropy ✓"),
    ("key", " MixedCase ", "Sub.Ject_1", "  padded entropy  "),
])
def test_webcrypto_script_derives_the_same_identity(method: str, network: str, subject: str,
                                                    entropy: str) -> None:
    challenge = "challenge from the gateway"
    result = _node("--method", method, "--network", network, "--subject", subject,
                   "--entropy", entropy, "--challenge", challenge)
    assert result.returncode == 0, result.stderr
    ident = derive_identity(method=method, network=network, subject=subject, entropy=entropy)
    assert json.loads(result.stdout) == {
        "method": ident.method,
        "network": ident.network,
        "subject": ident.subject,
        "did": ident.did,
        "key_id": ident.key_id,
        "fingerprint": ident.fingerprint,
        "public_key_multibase": ident.public_key_multibase,
        "signature": sign_challenge(ident, challenge.encode("utf-8")),
    }


@pytest.mark.parametrize("args", [
    ("--network", "tau..devnet", "--entropy", "e"),
    ("--subject", "agent-", "--entropy", "e"),
    ("--entropy", " "),
    ("--method", "peer", "--entropy", "e"),
])
def test_webcrypto_script_refuses_what_python_refuses(args: tuple[str, ...]) -> None:
    result = _node(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stdout == ""


def test_webcrypto_script_reads_the_entropy_from_a_file_as_tau_ops_does(tmp_path: Path) -> None:
    secret = tmp_path / "entropy"
    secret.write_bytes(b"local-dev-seed\r\n")
    result = _node("--entropy-file", str(secret))
    assert result.returncode == 0, result.stderr
    ident = derive_identity(method="key", network="tau-devnet", subject="browser-agent",
                            entropy=read_entropy(secret))
    assert ident.did == derive_identity(method="key", network="tau-devnet",
                                        subject="browser-agent", entropy="local-dev-seed").did
    assert json.loads(result.stdout)["did"] == ident.did
    both = _node("--entropy-file", str(secret), "--entropy", "x")
    assert (both.returncode, both.stderr) == (
        2, "error: pass one of --entropy and --entropy-file, not both\n")
