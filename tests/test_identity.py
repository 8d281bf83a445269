"""Browser DID identities: derivation, did:key/did:web, documents, sign/verify, persistence."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from builders import REPO
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from tau_ops.errors import IdentifierError, StateError
from tau_ops.identity import (
    BrowserIdentity,
    DidReport,
    base58btc_decode,
    base58btc_encode,
    bootstrap_did,
    derivation_input,
    derive_identity,
    derive_seed,
    did_document,
    did_key_from_public_key,
    identity_from_seed,
    resolve_did_key,
    sign_challenge,
    verify_signature,
)

# W3C CCG did:key spec, test-vectors/ed25519-x25519.json: seed -> publicKeyBase58 -> DID.
CCG_ED25519_VECTORS = [
    ("00" * 32, "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
     "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    ("00" * 31 + "01", "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
     "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"),
    ("00" * 31 + "02", "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
     "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"),
    ("00" * 31 + "03", "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
     "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ"),
    ("00" * 31 + "04", "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
     "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL"),
]
RUNBOOK = {"method": "key", "network": "tau-devnet", "subject": "browser-agent",
           "entropy": "local-dev-seed"}
RUNBOOK_DID = "did:key:z6Mkk75exxGYAwtXNe14TzN2kwEHnqYXDLu5jyVTDiXzrE95"
REPORT_FIELDS = ["runtime", "interoperability_profile", "method", "network", "subject", "did",
                 "key_id", "fingerprint", "public_key_multibase", "output_path", "persisted"]


def identity(**overrides: str) -> BrowserIdentity:
    inputs = {**RUNBOOK, **overrides}
    return derive_identity(**inputs)


# --- did:key encoding ------------------------------------------------------


@pytest.mark.parametrize(("seed_hex", "public_b58", "did"), CCG_ED25519_VECTORS)
def test_public_key_to_did_matches_w3c_ccg_vectors(seed_hex: str, public_b58: str,
                                                   did: str) -> None:
    public = base58btc_decode(public_b58)
    assert len(public) == 32
    assert did_key_from_public_key(public) == did


@pytest.mark.parametrize(("seed_hex", "public_b58", "did"), CCG_ED25519_VECTORS)
def test_seed_to_identity_matches_w3c_ccg_vectors(seed_hex: str, public_b58: str,
                                                  did: str) -> None:
    ident = identity_from_seed(bytes.fromhex(seed_hex), method="key", network="n", subject="s")
    assert (base58btc_encode(ident.public_key), ident.did, ident.key_id) == (
        public_b58, did, f"{did}#{did.removeprefix('did:key:')}")


@pytest.mark.parametrize(("seed_hex", "public_b58", "did"), CCG_ED25519_VECTORS)
def test_resolving_a_ccg_did_key_yields_its_public_key(seed_hex: str, public_b58: str,
                                                       did: str) -> None:
    fragment = did.removeprefix("did:key:")
    method = resolve_did_key(did)["verificationMethod"][0]
    assert method == {"id": f"{did}#{fragment}", "type": "Multikey", "controller": did,
                      "publicKeyMultibase": fragment}
    assert base58btc_decode(method["publicKeyMultibase"][1:]) == b"\xed\x01" + base58btc_decode(
        public_b58)


@pytest.mark.parametrize(("raw", "encoded"), [
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (b"The quick brown fox jumps over the lazy dog.",
     "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"),
    (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    (b"", ""),
    (b"\0", "1"),
])
def test_base58btc_known_values(raw: bytes, encoded: str) -> None:
    assert base58btc_encode(raw) == encoded
    assert base58btc_decode(encoded) == raw


@given(st.binary(max_size=80))
def test_base58btc_round_trips_any_bytes(raw: bytes) -> None:
    assert base58btc_decode(base58btc_encode(raw)) == raw


def test_base58btc_refuses_characters_outside_the_alphabet() -> None:
    with pytest.raises(ValueError, match="'0'"):
        base58btc_decode("z0OIl")


# --- derivation ------------------------------------------------------------


def test_same_inputs_give_the_same_identity_byte_for_byte() -> None:
    first, second = identity(), identity()
    assert first == second
    assert did_document(first) == did_document(second)
    assert sign_challenge(first, b"c") == sign_challenge(second, b"c")
    assert first.did == RUNBOOK_DID


@pytest.mark.parametrize("change", [
    {"entropy": "local-dev-seed2"},
    {"entropy": "local-dev-seed "},
    {"network": "tau-mainnet"},
    {"subject": "browser-agent-2"},
])
def test_any_changed_input_gives_a_different_did(change: dict[str, str]) -> None:
    assert identity(**change).did != RUNBOOK_DID


def test_method_is_part_of_the_key_derivation() -> None:
    assert identity(method="web").public_key != identity(method="key").public_key


def test_normalization_happens_before_derivation() -> None:
    assert identity(network="  TAU-Devnet ", subject="Browser-Agent", method=" KEY") == identity()


def test_length_prefixes_keep_shifted_boundaries_apart() -> None:
    left = derivation_input(method="key", network="a.b", subject="c", entropy="e")
    right = derivation_input(method="key", network="a", subject="b.c", entropy="e")
    assert left != right
    assert identity(network="a.b", subject="c").did != identity(network="a", subject="b.c").did
    assert left == (b"\0\0\0\x03key" + b"\0\0\0\x03a.b" + b"\0\0\0\x01c" + b"\0\0\0\x01e")


def test_entropy_bytes_and_their_utf8_string_derive_the_same_seed() -> None:
    inputs = {k: v for k, v in RUNBOOK.items() if k != "entropy"}
    assert derive_seed(**inputs, entropy="clé") == derive_seed(**inputs,
                                                              entropy="clé".encode())


def test_identity_repr_never_shows_the_private_key() -> None:
    ident = identity()
    seed = derive_seed(**RUNBOOK)
    assert "private_key" not in repr(ident)
    assert seed.hex() not in repr(ident)


def _doc_vectors() -> list[dict[str, Any]]:
    text = (REPO / "docs" / "guides" / "browser-did.md").read_text(encoding="utf-8")
    section = text.split("## 7. Test vectors", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    vectors: list[dict[str, Any]] = json.loads(block.group(1))
    return vectors


@pytest.mark.parametrize("vector", _doc_vectors(), ids=lambda v: v["did"])
def test_documented_test_vectors_match_the_implementation(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    ident = derive_identity(**inputs)
    assert {
        "inputs": inputs,
        "ikm_hex": derivation_input(**inputs).hex(),
        "seed_hex": derive_seed(**inputs).hex(),
        "public_key_hex": ident.public_key.hex(),
        "public_key_multibase": ident.public_key_multibase,
        "did": ident.did,
        "key_id": ident.key_id,
        "fingerprint": ident.fingerprint,
        "challenge": vector["challenge"],
        "signature": sign_challenge(ident, vector["challenge"].encode()),
    } == vector


# --- validation ------------------------------------------------------------


@pytest.mark.parametrize("field", ["network", "subject"])
@pytest.mark.parametrize(("value", "problem"), [
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("tau devnet", "characters outside"),
    ("tau/devnet", "characters outside"),
    ("tau:devnet", "characters outside"),
    ("tauné", "characters outside"),
    ("a..b", "empty dot segment"),
    (".tau", "empty dot segment"),
    ("tau.", "empty dot segment"),
    ("-tau", "start and end"),
    ("tau-", "start and end"),
    ("_tau", "start and end"),
    ("tau.devnet_", "start and end"),
    ("tau.-devnet", "start and end"),
])
def test_invalid_identifiers_are_refused_naming_the_field(field: str, value: str,
                                                          problem: str) -> None:
    with pytest.raises(IdentifierError, match=problem) as caught:
        identity(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


@pytest.mark.parametrize(("value", "normalized"), [
    ("tau-devnet", "tau-devnet"),
    ("  Tau.DevNet\t", "tau.devnet"),
    ("a", "a"),
    ("edge_1.eu-west.x9", "edge_1.eu-west.x9"),
])
def test_valid_identifiers_are_trimmed_and_lower_cased(value: str, normalized: str) -> None:
    assert (identity(network=value).network, identity(subject=value).subject) == (
        normalized, normalized)


@pytest.mark.parametrize("entropy", ["", "  \n", b""])
def test_empty_entropy_is_refused(entropy: str) -> None:
    with pytest.raises(IdentifierError, match="no default") as caught:
        derive_identity(method="key", network="n", subject="s", entropy=entropy)
    assert caught.value.field == "entropy"


@pytest.mark.parametrize("method", ["", "ed25519", "peer", "did:key"])
def test_unknown_methods_are_refused(method: str) -> None:
    with pytest.raises(IdentifierError, match="key or web") as caught:
        identity(method=method)
    assert caught.value.field == "method"


# --- did:web and documents -------------------------------------------------


def test_did_web_maps_network_dots_to_colons() -> None:
    ident = identity(method="web", network="Tau.Devnet.EU", subject="Browser-Agent")
    assert (ident.did, ident.key_id) == ("did:web:tau:devnet:eu:browser-agent",
                                         "did:web:tau:devnet:eu:browser-agent#primary")


def test_did_web_document_carries_the_derived_key() -> None:
    ident = identity(method="web")
    did, key_id = "did:web:tau-devnet:browser-agent", "did:web:tau-devnet:browser-agent#primary"
    assert did_document(ident) == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{"id": key_id, "type": "Multikey", "controller": did,
                                "publicKeyMultibase": ident.public_key_multibase}],
        "authentication": [key_id],
        "assertionMethod": [key_id],
        "capabilityInvocation": [key_id],
        "capabilityDelegation": [key_id],
    }


def test_did_key_document_equals_what_a_resolver_derives_from_the_did() -> None:
    ident = identity()
    assert resolve_did_key(ident.did) == did_document(ident)
    assert did_document(ident)["verificationMethod"][0]["id"] == (
        f"{RUNBOOK_DID}#{RUNBOOK_DID.removeprefix('did:key:')}")


@pytest.mark.parametrize("did", [
    "did:web:tau:devnet:browser-agent",
    "did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0",
    "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo",
    RUNBOOK_DID + "#frag",
    # a valid secp256k1 did:key (W3C CCG vectors): right syntax, wrong key type
    "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
])
def test_resolve_refuses_anything_but_an_ed25519_did_key(did: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        resolve_did_key(did)
    assert caught.value.field == "did"


# --- sign and verify -------------------------------------------------------


def test_signature_round_trip_verifies_against_the_did() -> None:
    ident = identity()
    signature = sign_challenge(ident, b"nonce-123")
    assert verify_signature(did=ident.did, challenge=b"nonce-123", signature=signature)


def test_did_key_decodes_to_the_public_key_that_signs_its_challenges() -> None:
    ident = identity()
    public = base58btc_decode(ident.did.removeprefix("did:key:z"))[2:]
    signature = base58btc_decode(sign_challenge(ident, b"hello")[1:])
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"hello")  # raises if not


def _flip_last_byte(signature: str) -> str:
    raw = bytearray(base58btc_decode(signature[1:]))
    raw[-1] ^= 0x01
    return "z" + base58btc_encode(bytes(raw))


@pytest.mark.parametrize("tamper", ["challenge", "signature", "signer", "garbage", "prefix"])
def test_tampering_is_rejected(tamper: str) -> None:
    ident = identity()
    challenge, signature = b"nonce-123", sign_challenge(ident, b"nonce-123")
    if tamper == "challenge":
        challenge = b"nonce-124"
    elif tamper == "signature":
        signature = _flip_last_byte(signature)
    elif tamper == "signer":
        signature = sign_challenge(identity(entropy="other"), challenge)
    elif tamper == "garbage":
        signature = "z0000"
    else:
        signature = signature[1:]
    assert verify_signature(did=ident.did, challenge=challenge, signature=signature) is False


def test_did_web_signature_verifies_against_its_document_only() -> None:
    ident = identity(method="web")
    signature = sign_challenge(ident, b"c")
    document = did_document(ident)
    assert verify_signature(did=ident.did, challenge=b"c", signature=signature, document=document)
    other = did_document(identity(method="web", entropy="other"))
    assert not verify_signature(did=ident.did, challenge=b"c", signature=signature, document=other)


def test_did_web_needs_its_document_to_verify() -> None:
    ident = identity(method="web")
    with pytest.raises(IdentifierError, match="pass its DID document") as caught:
        verify_signature(did=ident.did, challenge=b"c", signature=sign_challenge(ident, b"c"))
    assert caught.value.field == "document"
    with pytest.raises(IdentifierError, match="not 'did:web:x:y'"):
        verify_signature(did="did:web:x:y", challenge=b"c", signature="z1",
                         document=did_document(ident))


# --- bootstrap and persistence ---------------------------------------------


def test_bootstrap_persists_the_seed_layout_without_private_key(tmp_path: Path) -> None:
    out = tmp_path / "state" / "browser-did.json"
    report = bootstrap_did(**RUNBOOK, output_path=out)
    ident = identity()
    assert list(report.model_dump()) == REPORT_FIELDS
    assert report == DidReport(
        runtime="wasm_browser", interoperability_profile="kamn_did_ed25519_hkdf_sha256_v1",
        method="key", network="tau-devnet", subject="browser-agent", did=RUNBOOK_DID,
        key_id=ident.key_id, fingerprint=ident.fingerprint,
        public_key_multibase=RUNBOOK_DID.removeprefix("did:key:"), output_path=str(out),
        persisted=True)
    assert json.loads(out.read_text()) == {
        "schema_version": 1,
        "runtime": "wasm_browser",
        "interoperability_profile": "kamn_did_ed25519_hkdf_sha256_v1",
        "identity": {
            "schema_version": 1, "method": "key", "network": "tau-devnet",
            "subject": "browser-agent", "did": RUNBOOK_DID, "key_id": ident.key_id,
            "fingerprint": ident.fingerprint,
            "proof_material": base64.urlsafe_b64encode(
                bytes.fromhex(ident.fingerprint)).decode().rstrip("="),
            "public_key_multibase": RUNBOOK_DID.removeprefix("did:key:"),
        },
        "did_document": did_document(ident)}
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["browser-did.json"]  # no temp left


def test_private_key_is_written_only_when_asked_and_then_mode_0600(tmp_path: Path) -> None:
    out = tmp_path / "browser-did.json"
    bootstrap_did(**RUNBOOK, output_path=out, include_private_key=True)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    private = json.loads(out.read_text())["private_key"]
    seed = base58btc_decode(private["private_key_multibase"][1:])
    assert seed[:2] == b"\x80\x26"
    key = Ed25519PrivateKey.from_private_bytes(seed[2:])
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert did_key_from_public_key(public) == RUNBOOK_DID
    assert private["key_id"] == identity().key_id
    assert private["private_key_jwk"]["kty"] == "OKP"
    # rewriting without the flag drops the key and the restrictive mode
    bootstrap_did(**RUNBOOK, output_path=out)
    assert "private_key" not in json.loads(out.read_text())
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


def test_bootstrap_without_output_path_persists_nothing(tmp_path: Path) -> None:
    report = bootstrap_did(**RUNBOOK, output_path=None)
    assert (report.persisted, report.output_path, report.did) == (False, None, RUNBOOK_DID)


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "browser-did.json"
    with pytest.raises(IdentifierError):
        bootstrap_did(**{**RUNBOOK, "subject": "a..b"}, output_path=out)
    assert not out.exists()


def test_unwritable_output_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot write DID payload"):
        bootstrap_did(**RUNBOOK, output_path=blocker / "browser-did.json")
