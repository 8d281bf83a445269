"""The bootstrap: derive, report (SPEC section 7), and persist the payload atomically."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import BaseModel, ConfigDict

from tau_ops.errors import StateError
from tau_ops.identity.derive import (
    ED25519_PRIV_CODEC,
    INTEROPERABILITY_PROFILE,
    BrowserIdentity,
    base58btc_encode,
    derive_identity,
)
from tau_ops.identity.documents import did_document
from tau_ops.storage import atomic_write_json

RUNTIME = "wasm_browser"
PAYLOAD_SCHEMA_VERSION = 1


class DidReport(BaseModel):
    """The bootstrap report (SPEC section 7); never holds private key material."""

    model_config = ConfigDict(frozen=True)

    runtime: str
    interoperability_profile: str
    method: str
    network: str
    subject: str
    did: str
    key_id: str
    fingerprint: str
    public_key_multibase: str
    output_path: str | None
    persisted: bool


class DidPrivateKey(BaseModel):
    """Private key material, written only on explicit request (file mode 0600)."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    private_key_multibase: str
    private_key_jwk: dict[str, str]


class DidPayload(BaseModel):
    """The persisted bootstrap file: report, DID document, and the private key if asked."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = PAYLOAD_SCHEMA_VERSION
    report: DidReport
    did_document: dict[str, Any]
    private_key: DidPrivateKey | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_key_material(identity: BrowserIdentity) -> DidPrivateKey:
    """The seed as Multikey ``privateKeyMultibase`` (0x8026) and as an OKP JWK."""
    seed = identity.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    jwk = {"kty": "OKP", "crv": "Ed25519", "d": _b64url(seed), "x": _b64url(identity.public_key)}
    return DidPrivateKey(
        key_id=identity.key_id,
        private_key_multibase="z" + base58btc_encode(ED25519_PRIV_CODEC + seed),
        private_key_jwk=jwk,
    )


def _report(identity: BrowserIdentity, output_path: Path | None, persisted: bool) -> DidReport:
    return DidReport(
        runtime=RUNTIME,
        interoperability_profile=INTEROPERABILITY_PROFILE,
        method=identity.method,
        network=identity.network,
        subject=identity.subject,
        did=identity.did,
        key_id=identity.key_id,
        fingerprint=identity.fingerprint,
        public_key_multibase=identity.public_key_multibase,
        output_path=str(output_path) if output_path is not None else None,
        persisted=persisted,
    )


def bootstrap_did(
    *,
    method: str,
    network: str,
    subject: str,
    entropy: str | bytes,
    output_path: Path | None,
    include_private_key: bool = False,
) -> DidReport:
    """Derive the identity and persist document + report atomically at ``output_path``.

    Overwriting an earlier payload loses nothing: every identity is re-derivable
    from its inputs. With ``include_private_key`` the file is written mode 0600.
    ``output_path=None`` derives without writing (``persisted`` false).
    """
    identity = derive_identity(method=method, network=network, subject=subject, entropy=entropy)
    if output_path is None:
        return _report(identity, None, False)
    report = _report(identity, output_path, True)
    payload = DidPayload(
        report=report,
        did_document=did_document(identity),
        private_key=private_key_material(identity) if include_private_key else None,
    )
    try:
        atomic_write_json(
            output_path,
            payload.model_dump(mode="json", exclude_none=True),
            mode=0o600 if include_private_key else 0o644,
        )
    except OSError as exc:
        raise StateError(f"cannot write DID payload {output_path}: {exc.strerror or exc}",
                         path=output_path) from exc
    return report

