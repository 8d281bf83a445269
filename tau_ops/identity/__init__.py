"""Browser DID bootstrap (KAMN): deterministic Ed25519 identities as did:key and did:web.

``derive`` owns the recipe (inputs -> key -> DID), ``documents`` the DID
documents, resolution and signatures, ``bootstrap`` the report and the
persisted payload. Everything public is re-exported here.
"""

from __future__ import annotations

from tau_ops.identity.bootstrap import (
    PAYLOAD_SCHEMA_VERSION,
    RUNTIME,
    DidPayload,
    DidPrivateKey,
    DidReport,
    bootstrap_did,
    private_key_material,
)
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
    did_document,
    load_did_document,
    resolve_did_key,
    sign_challenge,
    verify_signature,
)

__all__ = [
    "DID_CONTEXT",
    "HKDF_INFO",
    "HKDF_SALT",
    "INTEROPERABILITY_PROFILE",
    "METHODS",
    "PAYLOAD_SCHEMA_VERSION",
    "RUNTIME",
    "BrowserIdentity",
    "DidPayload",
    "DidPrivateKey",
    "DidReport",
    "Method",
    "base58btc_decode",
    "base58btc_encode",
    "bootstrap_did",
    "derivation_input",
    "derive_identity",
    "derive_seed",
    "did_document",
    "did_key_from_public_key",
    "did_web",
    "identity_from_seed",
    "load_did_document",
    "normalize_method",
    "normalize_network",
    "normalize_subject",
    "private_key_material",
    "public_key_multibase",
    "resolve_did_key",
    "sign_challenge",
    "verify_signature",
]
