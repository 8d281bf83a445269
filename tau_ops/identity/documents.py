"""DID documents, local did:key resolution, and Ed25519 challenge signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tau_ops.errors import IdentifierError
from tau_ops.identity.derive import (
    ED25519_PUB_CODEC,
    BrowserIdentity,
    base58btc_decode,
    base58btc_encode,
    public_key_multibase,
)

DID_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


def _document(did: str, key_id: str, multibase: str) -> dict[str, Any]:
    return {
        "@context": list(DID_CONTEXT),
        "id": did,
        "verificationMethod": [
            {"id": key_id, "type": "Multikey", "controller": did, "publicKeyMultibase": multibase}
        ],
        "authentication": [key_id],
        "assertionMethod": [key_id],
        "capabilityInvocation": [key_id],
        "capabilityDelegation": [key_id],
    }


def did_document(identity: BrowserIdentity) -> dict[str, Any]:
    """The W3C DID Core document of an identity (one Multikey verification method)."""
    return _document(identity.did, identity.key_id, identity.public_key_multibase)


def _did_key_public_key(did: str) -> bytes:
    prefix = "did:key:z"
    if not did.startswith(prefix) or any(c in did for c in "#?/"):
        raise IdentifierError(f"did {did!r} is not a did:key (did:key:z...)", field="did")
    try:
        raw = base58btc_decode(did[len(prefix):])
    except ValueError as exc:
        raise IdentifierError(f"did {did!r} is not base58btc: {exc}", field="did") from exc
    if not raw.startswith(ED25519_PUB_CODEC) or len(raw) != 34:
        raise IdentifierError(
            f"did {did!r} is not an Ed25519 did:key (multicodec 0xed01, 32-byte key)", field="did"
        )
    return raw[2:]


def resolve_did_key(did: str) -> dict[str, Any]:
    """Resolve an Ed25519 did:key locally into its DID document, as did:key resolvers do."""
    public = _did_key_public_key(did.strip())
    multibase = public_key_multibase(public)
    return _document(did.strip(), f"{did.strip()}#{multibase}", multibase)


def sign_challenge(identity: BrowserIdentity, challenge: bytes) -> str:
    """Ed25519 signature of ``challenge`` as multibase base58btc (``z...``)."""
    return "z" + base58btc_encode(identity.private_key.sign(challenge))


def _authentication_keys(did: str, document: dict[str, Any]) -> list[bytes]:
    """Public keys of the document's verification methods listed under ``authentication``."""
    if document.get("id") != did:
        raise IdentifierError(f"DID document is for {document.get('id')!r}, not {did!r}",
                              field="document")
    wanted = {ref for ref in document.get("authentication", []) if isinstance(ref, str)}
    keys: list[bytes] = []
    for method in document.get("verificationMethod", []):
        if not isinstance(method, dict) or method.get("id") not in wanted:
            continue
        multibase = method.get("publicKeyMultibase")
        if isinstance(multibase, str) and multibase.startswith("z"):
            try:
                raw = base58btc_decode(multibase[1:])
            except ValueError:
                continue
            if raw.startswith(ED25519_PUB_CODEC) and len(raw) == 34:
                keys.append(raw[2:])
    return keys


def verify_signature(
    *, did: str, challenge: bytes, signature: str, document: dict[str, Any] | None = None
) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``challenge`` by ``did``.

    A did:key is resolved locally (``document`` is ignored); a did:web needs its
    DID document, since resolving it means an HTTPS fetch tau-ops does not make.
    A malformed signature is simply invalid (False).
    """
    did = did.strip()
    if did.startswith("did:key:"):
        keys = [_did_key_public_key(did)]
    elif did.startswith("did:web:"):
        if document is None:
            raise IdentifierError(
                f"did {did!r} is a did:web: pass its DID document to verify offline",
                field="document",
            )
        keys = _authentication_keys(did, document)
    else:
        raise IdentifierError(f"did {did!r} is neither did:key nor did:web", field="did")
    if not signature.startswith("z"):
        return False
    try:
        raw_signature = base58btc_decode(signature[1:])
    except ValueError:
        return False
    if len(raw_signature) != 64:
        return False
    for public in keys:
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw_signature, challenge)
        except InvalidSignature:
            continue
        return True
    return False


def load_did_document(path: Path) -> dict[str, Any]:
    """A DID document from a file: a bare document or a bootstrap payload (``did_document``)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdentifierError(f"cannot read DID document {path}: {exc.strerror or exc}",
                              field="document") from exc
    except ValueError as exc:
        raise IdentifierError(f"DID document {path} is not JSON: {exc}", field="document") from exc
    if isinstance(value, dict) and isinstance(value.get("did_document"), dict):
        value = value["did_document"]
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise IdentifierError(f"{path} holds no DID document (no 'id')", field="document")
    return value
