"""DID documents, local did:key resolution, and Ed25519 challenge signatures."""

from __future__ import annotations

from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tau_ops.errors import IdentifierError
from tau_ops.identity.derive import BrowserIdentity, base58btc_encode, public_key_multibase
from tau_ops.identity.keys import (
    multikey_ed25519,
    public_key_from_multibase,
    signature_from_multibase,
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
    """The W3C DID Core document of an identity (one Multikey verification method).

    The method is listed under ``authentication``, ``assertionMethod``,
    ``capabilityInvocation`` and ``capabilityDelegation`` (W3C DID Core 1.0,
    verification relationships); the context is :data:`DID_CONTEXT`.

    Parameters
    ----------
    identity : BrowserIdentity
        A derived identity.

    Returns
    -------
    dict
        The DID document as JSON-ready data (``@context``, ``id``,
        ``verificationMethod`` and the four relationships).

    Examples
    --------
    >>> from tau_ops.identity import derive_identity
    >>> identity = derive_identity(method="web", network="tau-devnet", subject="agent",
    ...                            entropy="demo")
    >>> document = did_document(identity)
    >>> document["id"], document["authentication"]
    ('did:web:tau-devnet:agent', ['did:web:tau-devnet:agent#primary'])
    """
    return _document(identity.did, identity.key_id, identity.public_key_multibase)


MAX_VERIFICATION_METHODS: Final = 64
"""Most verification methods (listed and embedded) a DID document may hold."""


def did_key_public_key(did: str) -> bytes:
    """The checked Ed25519 public key of a did:key.

    Parameters
    ----------
    did : str
        ``did:key:z6Mk...`` (no fragment, query or path).

    Returns
    -------
    bytes
        The 32-byte public key.

    Raises
    ------
    IdentifierError
        Not a did:key, not base58btc, not ``ed25519-pub``, too long, or a
        non-canonical, off-curve or small-order key (exit status 2).

    Examples
    --------
    >>> did_key_public_key("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp").hex()[:8]
    '3b6a27bc'
    """
    prefix = "did:key:"
    if not did.startswith(prefix + "z") or any(c in did for c in "#?/"):
        raise IdentifierError(f"did {did[:80]!r} is not a did:key (did:key:z...)", field="did")
    return public_key_from_multibase(did[len(prefix):], what=f"did {did[:80]!r}")


def resolve_did_key(did: str) -> dict[str, Any]:
    """Resolve an Ed25519 did:key locally into its DID document, as did:key resolvers do.

    Parameters
    ----------
    did : str
        ``did:key:z6Mk...`` (surrounding whitespace is ignored).

    Returns
    -------
    dict
        The DID document (``@context``, ``id``, one Multikey verification method).

    Raises
    ------
    IdentifierError
        Not an Ed25519 did:key, or a key that is non-canonical, off the curve
        or of small order (such a key would verify forged signatures).

    Examples
    --------
    >>> resolve_did_key("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")["id"][:12]
    'did:key:z6Mk'
    """
    public = did_key_public_key(did.strip())
    multibase = public_key_multibase(public)
    return _document(did.strip(), f"{did.strip()}#{multibase}", multibase)


def sign_challenge(identity: BrowserIdentity, challenge: bytes) -> str:
    """Ed25519 signature of ``challenge`` as multibase base58btc (``z...``).

    Parameters
    ----------
    identity : BrowserIdentity
        The signing identity (holds the private key).
    challenge : bytes
        The bytes to sign, verbatim.

    Returns
    -------
    str
        ``z`` + base58btc of the 64-byte signature (RFC 8032).

    Examples
    --------
    >>> from tau_ops.identity import derive_identity
    >>> identity = derive_identity(method="key", network="n", subject="s", entropy="e")
    >>> sign_challenge(identity, b"nonce-1").startswith("z")
    True
    """
    return "z" + base58btc_encode(identity.private_key.sign(challenge))


def _methods(document: dict[str, Any]) -> list[dict[str, Any]]:
    listed = document.get("verificationMethod", [])
    if not isinstance(listed, list):
        raise IdentifierError("DID document 'verificationMethod' is not a list", field="document")
    auth = document.get("authentication", [])
    if not isinstance(auth, list):
        raise IdentifierError("DID document 'authentication' is not a list", field="document")
    methods = listed + [entry for entry in auth if isinstance(entry, dict)]
    if len(methods) > MAX_VERIFICATION_METHODS:
        raise IdentifierError(
            f"DID document has {len(methods)} verification methods, over the limit of "
            f"{MAX_VERIFICATION_METHODS}", field="document")
    for method in methods:
        if not isinstance(method, dict) or not isinstance(method.get("id"), str):
            raise IdentifierError("DID document has a verification method without an 'id'",
                                  field="document")
    return methods


def document_keys(document: dict[str, Any]) -> dict[str, bytes]:
    """Check a DID document and return its Ed25519 keys by verification method id.

    Parameters
    ----------
    document : dict
        A W3C DID Core document: ``id``, ``verificationMethod`` (a list), and
        ``authentication`` (references or embedded methods).

    Returns
    -------
    dict of str to bytes
        Each ``publicKeyMultibase`` Ed25519 key (32 raw bytes) under its method
        id. Keys of other types are left out: an Ed25519 signature never matches them.

    Raises
    ------
    IdentifierError
        No string ``id``; a malformed list; more than
        :data:`MAX_VERIFICATION_METHODS` methods; a key text over the length
        limit or not base58btc; or an Ed25519 key that is non-canonical, off
        the curve or of small order (exit status 2).

    Examples
    --------
    >>> doc = resolve_did_key("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
    >>> [key.hex()[:8] for key in document_keys(doc).values()]
    ['3b6a27bc']
    """
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise IdentifierError("not a DID document (no 'id')", field="document")
    keys: dict[str, bytes] = {}
    for method in _methods(document):
        text = method.get("publicKeyMultibase")
        if text is None:
            continue
        what = f"DID document key {method['id'][:120]!r}"
        if not isinstance(text, str):
            raise IdentifierError(f"{what} publicKeyMultibase is not a string", field="document")
        key = multikey_ed25519(text, what=what)
        if key is not None:
            keys[method["id"]] = key
    return keys


def _authentication_keys(did: str, document: dict[str, Any]) -> list[bytes]:
    """Checked public keys of the document's methods listed under ``authentication``."""
    keys = document_keys(document)
    if document["id"] != did:
        raise IdentifierError(f"DID document is for {document['id'][:120]!r}, not {did!r}",
                              field="document")
    wanted = [entry if isinstance(entry, str) else entry["id"]
              for entry in document.get("authentication", []) if isinstance(entry, (str, dict))]
    return list(dict.fromkeys(keys[ref] for ref in wanted if ref in keys))


def verify_signature(
    *, did: str, challenge: bytes, signature: str, document: dict[str, Any] | None = None
) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``challenge`` by ``did``.

    A did:key is resolved locally (``document`` is ignored); a did:web needs its
    DID document, since resolving it means an HTTPS fetch tau-ops does not make.
    A malformed signature is simply invalid (False). Keys are checked before
    use (:func:`~tau_ops.identity.keys.check_public_key`), and every text is
    bounded before it is decoded, so a hostile DID or document costs no more
    than a real one.

    Raises
    ------
    IdentifierError
        A malformed DID or document, a did:web without a document, or a key
        that is non-canonical, off the curve or of small order.

    Parameters
    ----------
    did : str
        The signer's DID (did:key or did:web).
    challenge : bytes
        The signed bytes.
    signature : str
        The signature as :func:`sign_challenge` renders it (``z...``).
    document : dict, optional
        The DID document; required for a did:web, ignored for a did:key.

    Returns
    -------
    bool
        True when one ``authentication`` key of the DID verifies the signature.

    Examples
    --------
    >>> from tau_ops.identity import derive_identity
    >>> identity = derive_identity(method="key", network="n", subject="s", entropy="e")
    >>> signature = sign_challenge(identity, b"nonce-1")
    >>> verify_signature(did=identity.did, challenge=b"nonce-1", signature=signature)
    True
    >>> verify_signature(did=identity.did, challenge=b"nonce-2", signature=signature)
    False
    """
    did = did.strip()
    if did.startswith("did:key:"):
        keys = [did_key_public_key(did)]
    elif did.startswith("did:web:"):
        if document is None:
            raise IdentifierError(
                f"did {did!r} is a did:web: pass its DID document to verify offline",
                field="document",
            )
        keys = _authentication_keys(did, document)
    else:
        raise IdentifierError(f"did {did!r} is neither did:key nor did:web", field="did")
    raw_signature = signature_from_multibase(signature)
    if raw_signature is None:
        return False
    for public in keys:
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw_signature, challenge)
        except InvalidSignature:
            continue
        return True
    return False
