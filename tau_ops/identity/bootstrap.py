"""The bootstrap: derive, report (SPEC section 7), and persist the payload atomically."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tau_ops.errors import StateError
from tau_ops.identity.derive import INTEROPERABILITY_PROFILE, BrowserIdentity, derive_identity
from tau_ops.identity.payload import RUNTIME, build_payload
from tau_ops.storage import atomic_write_json


class DidReport(BaseModel):
    """The bootstrap report (SPEC section 7, the seed's fields); never holds private key material.

    The seed's ``DeploymentWasmBrowserDidReport`` fields in its order, plus
    ``public_key_multibase`` (after ``fingerprint``).

    Examples
    --------
    >>> report = bootstrap_did(method="web", network="tau-devnet", subject="agent",
    ...                        entropy="local-dev-seed", output_path=None)
    >>> report.did, report.persisted
    ('did:web:tau-devnet:agent', False)
    """

    model_config = ConfigDict(frozen=True)

    runtime: str = Field(description="the runtime the identity is for (the seed's value)")
    interoperability_profile: str = Field(
        description="the versioned derivation recipe (kamn_did_ed25519_hkdf_sha256_v1)")
    method: str = Field(description="key or web")
    network: str = Field(description="the normalized network")
    subject: str = Field(description="the normalized subject")
    did: str = Field(description="the DID (did:key:z6Mk... or did:web:...)")
    key_id: str = Field(description="the verification method id")
    fingerprint: str = Field(description="SHA-256 of the raw public key (64 hex characters)")
    public_key_multibase: str = Field(description="the public key as Multikey text (z6Mk...)")
    output_path: str | None = Field(description="where the payload was written, or null")
    persisted: bool = Field(description="whether the payload was written")


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
    """Derive the identity and persist its payload atomically at ``output_path``.

    Parameters
    ----------
    method, network, subject : str
        The derivation inputs (normalized as SPEC section 7 says).
    entropy : str or bytes
        The secret input, used verbatim (a str as UTF-8).
    output_path : Path or None
        Payload file (the seed's layout, see :class:`~tau_ops.identity.DidPayload`);
        None derives without writing (``persisted`` false).
    include_private_key : bool, default False
        Also write the private key; the file is then mode 0600.

    Returns
    -------
    DidReport
        What ``--deployment-wasm-browser-did-json`` prints.

    Raises
    ------
    IdentifierError
        An input is invalid; nothing is written.
    StateError
        The payload cannot be written.

    Examples
    --------
    >>> bootstrap_did(method="key", network="tau-devnet", subject="browser-agent",
    ...               entropy="local-dev-seed", output_path=None).did[:12]
    'did:key:z6Mk'
    """
    identity = derive_identity(method=method, network=network, subject=subject, entropy=entropy)
    if output_path is None:
        return _report(identity, None, False)
    payload = build_payload(identity, include_private_key=include_private_key)
    try:
        atomic_write_json(
            output_path,
            payload.model_dump(mode="json", exclude_none=True),
            mode=0o600 if include_private_key else 0o644,
        )
    except OSError as exc:
        raise StateError(f"cannot write DID payload {output_path}: {exc.strerror or exc}",
                         path=output_path) from exc
    return _report(identity, output_path, True)
