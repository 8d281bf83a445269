"""Bootstrap payloads: the seed's layout, tau-ops 0.1 files, and reading under the JSON policy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from builders import TESTDATA

from tau_ops.errors import IdentifierError
from tau_ops.identity import (
    bootstrap_did,
    build_payload,
    derive_identity,
    did_document,
    identity_from_payload,
    load_did_document,
    load_did_payload,
    sign_challenge,
)

DIDS = TESTDATA / "did"
RUNBOOK = {"method": "key", "network": "tau-devnet", "subject": "browser-agent",
           "entropy": "local-dev-seed"}
WEB = {**RUNBOOK, "method": "web", "network": "tau.devnet"}


def test_a_written_payload_loads_back_as_the_same_value(tmp_path: Path) -> None:
    out = tmp_path / "browser-did.json"
    bootstrap_did(**RUNBOOK, output_path=out, include_private_key=True)
    assert load_did_payload(out) == build_payload(derive_identity(**RUNBOOK),
                                                  include_private_key=True)


def test_a_tau_ops_0_1_payload_loads_in_the_current_layout_and_signs() -> None:
    payload = load_did_payload(DIDS / "tau-ops-0.1-key-with-private-key.json")
    ident = derive_identity(**RUNBOOK)
    assert payload == build_payload(ident, include_private_key=True)
    signer = identity_from_payload(payload)
    assert (signer.did, sign_challenge(signer, b"hi")) == (ident.did, sign_challenge(ident, b"hi"))


def test_a_tau_ops_0_1_did_web_payload_gives_its_document() -> None:
    path = DIDS / "tau-ops-0.1-web.json"
    assert load_did_document(path) == did_document(derive_identity(**WEB))
    with pytest.raises(IdentifierError, match="payload holds no private key"):
        identity_from_payload(load_did_payload(path))


def test_a_payload_written_by_the_seed_is_refused_saying_why() -> None:
    path = DIDS / "seed-browser-did.json"
    with pytest.raises(IdentifierError) as caught:
        load_did_payload(path)
    assert caught.value.message == (
        f"{path} holds no DID document: written by the seed (profile kamn_browser_v1), whose "
        "did:key holds no real key; run tau-ops --deployment-wasm-browser-did-init to write "
        "a tau-ops payload")


def _written(tmp_path: Path, **inputs: str) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "browser-did.json"
    bootstrap_did(**{**RUNBOOK, **inputs}, output_path=out, include_private_key=True)
    return out, json.loads(out.read_text())


def _other_key() -> str:
    return derive_identity(**{**RUNBOOK, "entropy": "other"}).public_key_multibase


@pytest.mark.parametrize(("tamper", "message"), [
    ("document key", "payload DID document does not hold key"),
    ("identity key", "payload DID document does not hold key"),
    ("fingerprint", "payload fingerprint is not SHA-256 of its public key"),
    ("document id", "payload DID document is for 'did:web:elsewhere'"),
    ("private key", "payload private key does not belong to its DID"),
])
def test_a_payload_whose_parts_disagree_is_refused(tmp_path: Path, tamper: str,
                                                   message: str) -> None:
    other_payload = build_payload(derive_identity(**{**RUNBOOK, "entropy": "other"}),
                                  include_private_key=True)
    out, value = _written(tmp_path, method="web")
    if tamper == "document key":
        value["did_document"]["verificationMethod"][0]["publicKeyMultibase"] = _other_key()
    elif tamper == "identity key":
        value["identity"]["public_key_multibase"] = _other_key()
    elif tamper == "fingerprint":
        value["identity"]["fingerprint"] = "0" * 64
    elif tamper == "document id":
        value["did_document"]["id"] = "did:web:elsewhere"
    else:
        assert other_payload.private_key is not None
        value["private_key"] = other_payload.private_key.model_dump()
    out.write_text(json.dumps(value))
    with pytest.raises(IdentifierError, match=message):
        identity_from_payload(load_did_payload(out))


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "did:web:a:b", "id": "did:web:c:d"}', "duplicate key 'id'"),
    ('{"id": "did:web:a:b", "x": NaN}', "NaN is not JSON"),
    ('{"id": "did:web:a:b", "x": ' + "[" * 65 + "]" * 65 + "}", "nesting deeper than 64"),
    ('\ufeff{"id": "did:web:a:b"}', "byte-order mark"),
    ("[1, 2]", "holds no DID document (no 'id')"),
])
def test_documents_are_read_under_the_json_policy(tmp_path: Path, content: str,
                                                  message: str) -> None:
    path = tmp_path / "doc.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IdentifierError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_did_document(path)


def test_documents_over_the_size_limit_or_not_regular_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"id": "did:web:a:b", "pad": "' + "x" * (1024 * 1024) + '"}')
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, message in [
        (big, f"DID document {big} is {big.stat().st_size} bytes, over the 1048576-byte limit"),
        (fifo, f"DID document {fifo} is not a regular file (FIFO)"),
        (Path("/dev/zero"), "DID document /dev/zero is not a regular file (character device)"),
        (tmp_path / "missing.json",
         f"cannot read DID document {tmp_path / 'missing.json'}: No such file or directory"),
    ]:
        with pytest.raises(IdentifierError) as caught:
            load_did_document(path)
        assert (caught.value.message, caught.value.exit_code) == (message, 2)
