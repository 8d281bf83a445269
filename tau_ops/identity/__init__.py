"""Browser DID bootstrap (KAMN): deterministic Ed25519 identities as did:key and did:web.

``derive`` owns the recipe (inputs -> key -> DID), ``keys`` which Ed25519
public keys are acceptable (RFC 8032 point checks, bounded decoding),
``documents`` the DID documents, resolution and signatures, ``payload`` the
persisted file (the seed's layout) and reading payloads and documents,
``bootstrap`` the report and the write. Everything public is re-exported here.
"""

from __future__ import annotations

from tau_ops.identity.bootstrap import DidReport, bootstrap_did
from tau_ops.identity.derive import (
    HKDF_INFO,
    HKDF_SALT,
    INTEROPERABILITY_PROFILE,
    METHODS,
    BrowserIdentity,
    Method,
    base58btc_decode,
    base58btc_encode,
    derivation_input,
    derive_identity,
    derive_seed,
    did_key_from_public_key,
    did_web,
    identity_from_seed,
    normalize_method,
    normalize_network,
    normalize_subject,
    public_key_multibase,
)
from tau_ops.identity.documents import (
    DID_CONTEXT,
    MAX_VERIFICATION_METHODS,
    did_document,
    did_key_public_key,
    document_keys,
    resolve_did_key,
    sign_challenge,
    verify_signature,
)
from tau_ops.identity.keys import (
    MAX_KEY_MULTIBASE_CHARS,
    PointError,
    check_public_key,
    decode_point,
)
from tau_ops.identity.payload import (
    PAYLOAD_SCHEMA_VERSION,
    RUNTIME,
    DidIdentity,
    DidPayload,
    DidPrivateKey,
    build_payload,
    identity_from_payload,
    load_did_document,
    load_did_payload,
    payload_from_json,
    private_key_material,
)

__all__ = [
    "DID_CONTEXT",
    "HKDF_INFO",
    "HKDF_SALT",
    "INTEROPERABILITY_PROFILE",
    "MAX_KEY_MULTIBASE_CHARS",
    "MAX_VERIFICATION_METHODS",
    "METHODS",
    "PAYLOAD_SCHEMA_VERSION",
    "RUNTIME",
    "BrowserIdentity",
    "DidIdentity",
    "DidPayload",
    "DidPrivateKey",
    "DidReport",
    "Method",
    "PointError",
    "base58btc_decode",
    "base58btc_encode",
    "bootstrap_did",
    "build_payload",
    "check_public_key",
    "decode_point",
    "derivation_input",
    "derive_identity",
    "derive_seed",
    "did_document",
    "did_key_from_public_key",
    "did_key_public_key",
    "did_web",
    "document_keys",
    "identity_from_payload",
    "identity_from_seed",
    "load_did_document",
    "load_did_payload",
    "normalize_method",
    "normalize_network",
    "normalize_subject",
    "payload_from_json",
    "private_key_material",
    "public_key_multibase",
    "resolve_did_key",
    "sign_challenge",
    "verify_signature",
]
