"""The persisted bootstrap payload in the seed's layout, and reading payloads and DID documents.

The seed (``kamn-sdk``) writes ``{schema_version, runtime,
interoperability_profile, identity{schema_version, method, network,
subject, did, key_id, fingerprint, proof_material}}``. tau-ops writes the
same layout, adds ``identity.public_key_multibase``, the ``did_document``
and (only when asked) ``private_key``. Payloads of tau-ops 0.1
(``{schema_version, report{...}, did_document, private_key?}``) still load.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tau_ops import jsonio
from tau_ops.errors import IdentifierError
from tau_ops.identity.derive import (
    ED25519_PRIV_CODEC,
    INTEROPERABILITY_PROFILE,
    BrowserIdentity,
    base58btc_encode,
    identity_from_seed,
)
from tau_ops.identity.documents import did_document, did_key_public_key, document_keys
from tau_ops.identity.keys import multibase_bytes, public_key_from_multibase
from tau_ops.jsonio import LIMITS, JSONPolicyError, parse_json, read_bounded

RUNTIME: Final = "wasm_browser"
PAYLOAD_SCHEMA_VERSION: Final = 1
SEED_PROFILE: Final = "kamn_browser_v1"


class DidIdentity(BaseModel):
    """The seed's ``identity`` object, plus ``public_key_multibase``.

    ``proof_material`` is, as in the seed, the base64url (no padding) form of
    the 32 bytes whose hex is ``fingerprint`` (here SHA-256 of the public key).

    Examples
    --------
    >>> from tau_ops.identity import build_payload, derive_identity
    >>> identity = derive_identity(method="key", network="n", subject="s", entropy="e")
    >>> build_payload(identity).identity.did == identity.did
    True
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=PAYLOAD_SCHEMA_VERSION, description="the seed's identity "
                                "schema version (1)")
    method: str = Field(description="`key` or `web`")
    network: str = Field(description="normalized network (lower-case)")
    subject: str = Field(description="normalized subject (lower-case)")
    did: str = Field(description="`did:key:z6Mk...` or `did:web:<network with : for .>:<subject>`")
    key_id: str = Field(description="verification method id: `did#<multibase>` (key), "
                        "`did#primary` (web)")
    fingerprint: str = Field(description="64-hex SHA-256 of the raw public key")
    proof_material: str = Field(description="base64url (no padding) of the fingerprint's 32 "
                                "bytes, as the seed writes it")
    public_key_multibase: str = Field(description="`z` + base58btc(0xed01 + public key); "
                                      "tau-ops addition")


class DidPrivateKey(BaseModel):
    """Private key material, written only on explicit request (file mode 0600).

    Examples
    --------
    >>> from tau_ops.identity import build_payload, derive_identity
    >>> identity = derive_identity(method="key", network="n", subject="s", entropy="e")
    >>> build_payload(identity, include_private_key=True).private_key is not None
    True
    """

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="the verification method the key belongs to")
    private_key_multibase: str = Field(description="`z` + base58btc(0x8026 + 32-byte seed)")
    private_key_jwk: dict[str, str] = Field(description="OKP JWK (`kty`, `crv`, `d`, `x`)")


class DidPayload(BaseModel):
    """The persisted bootstrap file (the seed's layout, plus the DID document).

    Examples
    --------
    >>> from tau_ops.identity import build_payload, derive_identity
    >>> identity = derive_identity(method="key", network="n", subject="s", entropy="e")
    >>> payload = build_payload(identity)
    >>> payload.runtime, payload.private_key is None
    ('wasm_browser', True)
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=PAYLOAD_SCHEMA_VERSION,
                                description="payload schema version (1)")
    runtime: str = Field(description="`wasm_browser`")
    interoperability_profile: str = Field(description="derivation recipe: "
                                          "`kamn_did_ed25519_hkdf_sha256_v1`")
    identity: DidIdentity = Field(description="the identity, in the seed's field names")
    did_document: dict[str, Any] = Field(description="W3C DID document (one Multikey method)")
    private_key: DidPrivateKey | None = Field(
        default=None, description="only with --deployment-wasm-browser-did-include-private-key "
        "(file mode 0600)")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def proof_material(fingerprint: str) -> str:
    """The seed's ``proof_material``: base64url (no padding) of the fingerprint's bytes.

    Parameters
    ----------
    fingerprint : str
        64 hex digits (SHA-256 of the public key).

    Returns
    -------
    str
        43 base64url characters.

    Raises
    ------
    ValueError
        ``fingerprint`` is not hex.

    Examples
    --------
    >>> proof_material("00" * 31 + "ff")
    'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8'
    """
    return _b64url(bytes.fromhex(fingerprint))


def private_key_material(identity: BrowserIdentity) -> DidPrivateKey:
    """The private key of an identity, in the two forms wallets and WebCrypto read.

    The 32-byte Ed25519 seed as a Multikey ``privateKeyMultibase`` (``z`` +
    base58btc of the multicodec ``ed25519-priv`` prefix 0x8026 + seed) and as
    an OKP JWK (RFC 8037: ``kty``, ``crv``, ``d``, ``x``, base64url without
    padding). Only ever written on explicit request (SPEC section 7).

    Parameters
    ----------
    identity : BrowserIdentity
        A derived identity (:func:`~tau_ops.identity.derive_identity`).

    Returns
    -------
    DidPrivateKey
        ``key_id``, ``private_key_multibase`` and ``private_key_jwk``.

    Examples
    --------
    >>> from tau_ops.identity import derive_identity
    >>> identity = derive_identity(method="key", network="tau-devnet",
    ...                            subject="browser-agent", entropy="demo")
    >>> key = private_key_material(identity)
    >>> key.private_key_multibase[:4], sorted(key.private_key_jwk), key.key_id == identity.key_id
    ('z3u2', ['crv', 'd', 'kty', 'x'], True)
    """
    seed = identity.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    jwk = {"kty": "OKP", "crv": "Ed25519", "d": _b64url(seed), "x": _b64url(identity.public_key)}
    return DidPrivateKey(
        key_id=identity.key_id,
        private_key_multibase="z" + base58btc_encode(ED25519_PRIV_CODEC + seed),
        private_key_jwk=jwk,
    )


def build_payload(identity: BrowserIdentity, *, include_private_key: bool = False) -> DidPayload:
    """The payload of an identity: seed layout, DID document, private key only if asked.

    The layout is the seed's (``kamn-sdk``: ``schema_version``, ``runtime``,
    ``interoperability_profile``, ``identity{...}``) plus tau-ops's
    ``identity.public_key_multibase``, ``did_document`` and ``private_key``.

    Parameters
    ----------
    identity : BrowserIdentity
        A derived identity (:func:`~tau_ops.identity.derive_identity`).
    include_private_key : bool, default False
        Also hold the private key (:func:`private_key_material`).

    Returns
    -------
    DidPayload
        What :func:`~tau_ops.identity.bootstrap_did` writes (with
        ``exclude_none``, so no ``private_key`` key unless asked).

    Examples
    --------
    >>> from tau_ops.identity import derive_identity
    >>> identity = derive_identity(method="key", network="tau-devnet",
    ...                            subject="browser-agent", entropy="demo")
    >>> payload = build_payload(identity)
    >>> payload.identity.proof_material, payload.private_key
    ('Xd22sxeY7DzmRd8bwTnSVXx1n0Um7vJTfKb1I3Ry7cU', None)
    >>> payload.did_document["verificationMethod"][0]["type"]
    'Multikey'
    """
    return DidPayload(
        runtime=RUNTIME,
        interoperability_profile=INTEROPERABILITY_PROFILE,
        identity=DidIdentity(
            method=identity.method,
            network=identity.network,
            subject=identity.subject,
            did=identity.did,
            key_id=identity.key_id,
            fingerprint=identity.fingerprint,
            proof_material=proof_material(identity.fingerprint),
            public_key_multibase=identity.public_key_multibase,
        ),
        did_document=did_document(identity),
        private_key=private_key_material(identity) if include_private_key else None,
    )


def _read(path: Path) -> Any:
    """A JSON file under the one JSON policy (size, file kind, duplicates, depth)."""
    try:
        data = read_bounded(path, max_bytes=LIMITS["did_document"], what="DID document")
    except OSError as exc:
        message = (f"cannot read DID document {path}: {exc.strerror}" if exc.strerror
                   else str(exc))
        raise IdentifierError(message, field="document") from exc
    try:
        return parse_json(data)
    except JSONPolicyError as exc:
        raise IdentifierError(f"DID document {path} is not acceptable JSON: {exc}",
                              field="document") from exc


def _from_legacy(value: dict[str, Any]) -> dict[str, Any]:
    """A tau-ops 0.1 payload (``report{}``) in the current layout."""
    report = value["report"]
    if not isinstance(report, dict):
        raise IdentifierError("payload 'report' is not an object", field="document")
    fingerprint = report.get("fingerprint")
    if not isinstance(fingerprint, str) or len(fingerprint) != 64:
        raise IdentifierError("payload report has no 64-hex 'fingerprint'", field="document")
    try:
        proof = proof_material(fingerprint)
    except ValueError as exc:
        raise IdentifierError("payload report 'fingerprint' is not hex",
                              field="document") from exc
    names = ("method", "network", "subject", "did", "key_id", "public_key_multibase")
    identity = {name: report.get(name) for name in names}
    return {
        "schema_version": value.get("schema_version"),
        "runtime": report.get("runtime"),
        "interoperability_profile": report.get("interoperability_profile"),
        "identity": {**identity, "fingerprint": fingerprint, "proof_material": proof},
        "did_document": value.get("did_document"),
        **({"private_key": value["private_key"]} if "private_key" in value else {}),
    }


def _check(payload: DidPayload) -> None:
    """The payload's identity, document and keys agree, and every key is usable."""
    ident = payload.identity
    key = public_key_from_multibase(ident.public_key_multibase,
                                    what="payload public_key_multibase", field="document")
    keys = document_keys(payload.did_document)
    if payload.did_document["id"] != ident.did:
        raise IdentifierError(f"payload DID document is for {payload.did_document['id']!r}, "
                              f"not {ident.did!r}", field="document")
    if keys.get(ident.key_id) != key:
        raise IdentifierError(f"payload DID document does not hold key {ident.key_id!r}",
                              field="document")
    if ident.did.startswith("did:key:") and did_key_public_key(ident.did) != key:
        raise IdentifierError("payload did:key and public key differ", field="document")
    if ident.fingerprint != hashlib.sha256(key).hexdigest():
        raise IdentifierError("payload fingerprint is not SHA-256 of its public key",
                              field="document")


def payload_from_json(value: Any, *, source: str = "payload") -> DidPayload:
    """Validate a parsed payload, in the seed's layout or tau-ops 0.1's ``report{}`` layout.

    Parameters
    ----------
    value : Any
        The parsed JSON document.
    source : str, default ``"payload"``
        Where it came from, for messages (usually the path).

    Returns
    -------
    DidPayload
        The payload in the current layout (a 0.1 payload is converted; its
        ``output_path`` and ``persisted`` are dropped, ``proof_material`` computed).

    Raises
    ------
    IdentifierError
        Not a payload; a payload written by the seed itself (its did:key holds
        no real key and it has no DID document); fields of the wrong type; or
        an identity, document and key that disagree or a key that is
        non-canonical, off the curve or of small order.

    Examples
    --------
    >>> from tau_ops.identity import build_payload, derive_identity
    >>> identity = derive_identity(method="web", network="tau.devnet", subject="agent",
    ...                            entropy="demo")
    >>> document = build_payload(identity).model_dump(mode="json", exclude_none=True)
    >>> payload_from_json(document).identity.key_id
    'did:web:tau:devnet:agent#primary'
    >>> document["identity"]["fingerprint"] = "00" * 32
    >>> payload_from_json(document, source="agent.json")
    Traceback (most recent call last):
    ...
    tau_ops.errors.IdentifierError: payload fingerprint is not SHA-256 of its public key
    """
    if not isinstance(value, dict):
        raise IdentifierError(f"{source} is not a DID payload (not an object)", field="document")
    if "report" in value and "identity" not in value:
        value = _from_legacy(value)
    elif "identity" not in value:
        raise IdentifierError(f"{source} is not a DID payload (no 'identity')", field="document")
    if "did_document" not in value:
        raise IdentifierError(
            f"{source} holds no DID document: written by the seed "
            f"(profile {value.get('interoperability_profile')!s}), whose did:key holds no real "
            "key; run tau-ops --deployment-wasm-browser-did-init to write a tau-ops payload",
            field="document")
    try:
        payload = DidPayload.model_validate(value, strict=True)
    except ValidationError as exc:
        where, message = jsonio.describe_schema_error(exc.errors())
        raise IdentifierError(f"{source} is not a DID payload: field '{where}' {message}",
                              field="document") from exc
    _check(payload)
    return payload


def load_did_payload(path: Path) -> DidPayload:
    """Read a payload file (seed layout or tau-ops 0.1), checked as :func:`payload_from_json`.

    The file is read under the one JSON policy (:mod:`tau_ops.jsonio`).

    Parameters
    ----------
    path : Path
        A file written by ``--deployment-wasm-browser-did-init`` (or
        :func:`~tau_ops.identity.bootstrap_did`), at most
        ``LIMITS['did_document']`` bytes.

    Returns
    -------
    DidPayload
        The checked payload, in the current layout.

    Raises
    ------
    IdentifierError
        Unreadable, not a regular file, over ``LIMITS['did_document']`` bytes,
        JSON the policy refuses, or a payload :func:`payload_from_json` refuses
        (exit 2).

    Examples
    --------
    >>> import tempfile
    >>> from tau_ops.identity import bootstrap_did
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     report = bootstrap_did(method="key", network="tau-devnet", subject="browser-agent",
    ...                            entropy="demo", output_path=Path(tmp) / "did.json")
    ...     payload = load_did_payload(Path(tmp) / "did.json")
    >>> payload.identity.did == report.did, payload.runtime
    (True, 'wasm_browser')
    """
    return payload_from_json(_read(path), source=str(path))


def load_did_document(path: Path) -> dict[str, Any]:
    """A checked DID document from a file: a bare document or a payload holding one.

    Parameters
    ----------
    path : Path
        A DID document, or a bootstrap payload (either layout).

    Returns
    -------
    dict
        The document, accepted by :func:`~tau_ops.identity.documents.document_keys`.

    Raises
    ------
    IdentifierError
        As :func:`load_did_payload`; or the document has no ``id``, too many
        methods, an over-long key text, or a key that is non-canonical, off the
        curve or of small order (exit status 2).

    Examples
    --------
    >>> import json, tempfile
    >>> from tau_ops.identity import derive_identity, did_document
    >>> identity = derive_identity(method="key", network="tau-devnet",
    ...                            subject="browser-agent", entropy="demo")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "did.json"
    ...     _ = path.write_text(json.dumps(did_document(identity)))
    ...     document = load_did_document(path)
    >>> document["id"] == identity.did
    True
    """
    value = _read(path)
    if isinstance(value, dict) and ("identity" in value or "report" in value):
        return payload_from_json(value, source=str(path)).did_document
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise IdentifierError(f"{path} holds no DID document (no 'id')", field="document")
    document_keys(value)
    return value


def identity_from_payload(payload: DidPayload) -> BrowserIdentity:
    """The signing identity of a payload written with its private key.

    Parameters
    ----------
    payload : DidPayload
        A payload that holds ``private_key`` (written with
        ``--deployment-wasm-browser-did-include-private-key``).

    Returns
    -------
    BrowserIdentity
        The identity rebuilt from the private key, able to sign
        (:func:`~tau_ops.identity.sign_challenge`).

    Raises
    ------
    IdentifierError
        The payload holds no private key, its private key is not a Multikey
        Ed25519 seed (0x8026, 32 bytes), or it does not give the payload's DID
        and public key.

    Examples
    --------
    >>> from tau_ops.identity import build_payload, derive_identity
    >>> identity = derive_identity(method="key", network="tau-devnet",
    ...                            subject="browser-agent", entropy="demo")
    >>> payload = build_payload(identity, include_private_key=True)
    >>> identity_from_payload(payload).did == identity.did
    True
    >>> identity_from_payload(build_payload(identity))
    Traceback (most recent call last):
    ...
    tau_ops.errors.IdentifierError: payload holds no private key: ...
    """
    if payload.private_key is None:
        raise IdentifierError(
            "payload holds no private key: write it with "
            "--deployment-wasm-browser-did-include-private-key, or sign from the inputs",
            field="document")
    raw = multibase_bytes(payload.private_key.private_key_multibase,
                          what="payload private_key_multibase", field="document")
    if not raw.startswith(ED25519_PRIV_CODEC) or len(raw) != 34:
        raise IdentifierError("payload private key is not an Ed25519 seed (0x8026, 32 bytes)",
                              field="document")
    ident = payload.identity
    identity = identity_from_seed(raw[2:], method=ident.method, network=ident.network,
                                  subject=ident.subject)
    if (identity.did, identity.public_key_multibase) != (ident.did, ident.public_key_multibase):
        raise IdentifierError("payload private key does not belong to its DID", field="document")
    return identity
