"""Derive Ed25519 identities from (method, network, subject, entropy); render did:key/did:web.

The recipe is public and versioned (``docs/guides/browser-did.md``) so that
browser or edge code with WebCrypto reproduces the same key and DID.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tau_ops.errors import IdentifierError

Method = Literal["key", "web"]

METHODS: tuple[str, ...] = ("key", "web")
INTEROPERABILITY_PROFILE = "kamn_did_ed25519_hkdf_sha256_v1"
HKDF_SALT = b"tau-ops/kamn/browser-did/v1"
HKDF_INFO = b"tau-ops kamn ed25519 seed v1"
ED25519_PUB_CODEC = b"\xed\x01"
ED25519_PRIV_CODEC = b"\x80\x26"

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58_ALPHABET)}
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def base58btc_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58; each leading zero byte becomes a ``1``.

    The alphabet and the leading-zero rule are those of the multibase ``z``
    prefix (draft-multiformats-multibase, base58btc).

    Parameters
    ----------
    data : bytes
        Any bytes.

    Returns
    -------
    str
        The base58btc text, without the multibase ``z``.

    Examples
    --------
    >>> base58btc_encode(b"\\x00\\x01")
    '12'
    """
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    """Inverse of :func:`base58btc_encode`.

    Parameters
    ----------
    text : str
        base58btc text, without the multibase ``z``.

    Returns
    -------
    bytes
        The decoded bytes; each leading ``1`` is a zero byte.

    Raises
    ------
    ValueError
        A character is outside the base58btc alphabet (callers translate it).

    Examples
    --------
    >>> base58btc_decode("12")
    b'\\x00\\x01'
    """
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + _B58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _normalize_identifier(value: str, *, field_name: str) -> str:
    """SPEC 7: trimmed, non-empty, ``[A-Za-z0-9._-]``, dot segments alnum at both ends, lower."""
    text = value.strip()
    if not text:
        raise IdentifierError(f"{field_name} must not be empty", field=field_name)
    if not _ALLOWED.fullmatch(text):
        bad = sorted({c for c in text if not _ALLOWED.fullmatch(c)})
        raise IdentifierError(
            f"{field_name} {text!r} has characters outside [A-Za-z0-9._-]: {''.join(bad)!r}",
            field=field_name,
        )
    for segment in text.split("."):
        if not segment:
            raise IdentifierError(
                f"{field_name} {text!r} has an empty dot segment", field=field_name
            )
        if not (_ALNUM.fullmatch(segment[0]) and _ALNUM.fullmatch(segment[-1])):
            raise IdentifierError(
                f"{field_name} segment {segment!r} of {text!r} must start and end "
                "with a letter or digit",
                field=field_name,
            )
    return text.lower()


def normalize_network(value: str) -> str:
    """The network as it enters the derivation and the DID (e.g. ``tau-devnet``).

    SPEC section 7: trimmed, non-empty, only ``[A-Za-z0-9._-]``, each dot
    segment non-empty and starting and ending with a letter or digit; then
    lower-cased.

    Parameters
    ----------
    value : str
        The network as given.

    Returns
    -------
    str
        The normalized network.

    Raises
    ------
    IdentifierError
        The network breaks one of the rules (``field="network"``).

    Examples
    --------
    >>> normalize_network("  Tau-Devnet ")
    'tau-devnet'
    """
    return _normalize_identifier(value, field_name="network")


def normalize_subject(value: str) -> str:
    """The subject as it enters the derivation and the DID (e.g. ``browser-agent``).

    SPEC section 7: trimmed, non-empty, only ``[A-Za-z0-9._-]``, each dot
    segment non-empty and starting and ending with a letter or digit; then
    lower-cased.

    Parameters
    ----------
    value : str
        The subject as given.

    Returns
    -------
    str
        The normalized subject.

    Raises
    ------
    IdentifierError
        The subject breaks one of the rules (``field="subject"``).

    Examples
    --------
    >>> normalize_subject("  Browser-Agent ")
    'browser-agent'
    """
    return _normalize_identifier(value, field_name="subject")


def normalize_method(value: str) -> Method:
    """``key`` or ``web`` (trimmed, case-insensitive).

    Parameters
    ----------
    value : str
        The DID method as given.

    Returns
    -------
    Method
        ``"key"`` or ``"web"``.

    Raises
    ------
    IdentifierError
        Any other method (``field="method"``).

    Examples
    --------
    >>> normalize_method(" KEY ")
    'key'
    """
    text = value.strip().lower()
    if text == "key":
        return "key"
    if text == "web":
        return "web"
    raise IdentifierError(f"method {value!r} is not supported (use key or web)", field="method")


def _entropy_bytes(entropy: str | bytes) -> bytes:
    """Entropy is used verbatim (str as UTF-8); refused when empty or only whitespace."""
    raw = entropy.encode("utf-8") if isinstance(entropy, str) else bytes(entropy)
    if not raw.strip():
        raise IdentifierError(
            "entropy must not be empty: there is no default, since a shared default "
            "would give everyone the same key",
            field="entropy",
        )
    return raw


def derivation_input(*, method: str, network: str, subject: str, entropy: str | bytes) -> bytes:
    """The HKDF input keying material: each part as 4-byte big-endian length + bytes.

    Length prefixes make the encoding injective, so no two input tuples share
    an IKM (``("a.b", "c")`` and ``("a", "b.c")`` stay apart).

    Parameters
    ----------
    method : str
        ``key`` or ``web`` (see :func:`normalize_method`).
    network : str
        The network, e.g. ``tau-devnet`` (see :func:`normalize_network`).
    subject : str
        The subject, e.g. ``browser-agent`` (see :func:`normalize_subject`).
    entropy : str or bytes
        Caller-held secret, used verbatim (str as UTF-8); there is no default.

    Returns
    -------
    bytes
        The input keying material (4 bytes + length per part).

    Raises
    ------
    IdentifierError
        An input breaks the SPEC section 7 rules, or the entropy is empty or
        only whitespace (``field`` names the input).

    Examples
    --------
    >>> derivation_input(method="key", network="n", subject="s", entropy="e")
    b'\\x00\\x00\\x00\\x03key\\x00\\x00\\x00\\x01n\\x00\\x00\\x00\\x01s\\x00\\x00\\x00\\x01e'
    """
    parts = (
        normalize_method(method).encode("ascii"),
        normalize_network(network).encode("ascii"),
        normalize_subject(subject).encode("ascii"),
        _entropy_bytes(entropy),
    )
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def derive_seed(*, method: str, network: str, subject: str, entropy: str | bytes) -> bytes:
    """The 32-byte Ed25519 private seed (RFC 8032): HKDF-SHA256(salt, ikm, info, 32).

    HKDF is RFC 5869; salt and info are :data:`HKDF_SALT` and
    :data:`HKDF_INFO`, the IKM is :func:`derivation_input`.

    Parameters
    ----------
    method : str
        ``key`` or ``web`` (see :func:`normalize_method`).
    network : str
        The network, e.g. ``tau-devnet`` (see :func:`normalize_network`).
    subject : str
        The subject, e.g. ``browser-agent`` (see :func:`normalize_subject`).
    entropy : str or bytes
        Caller-held secret, used verbatim (str as UTF-8); there is no default.

    Returns
    -------
    bytes
        The seed (32 bytes).

    Raises
    ------
    IdentifierError
        An input breaks the SPEC section 7 rules, or the entropy is empty or
        only whitespace (``field`` names the input).

    Examples
    --------
    >>> derive_seed(method="key", network="tau-devnet", subject="browser-agent",
    ...             entropy="demo").hex()[:16]
    '732455e173c91f67'
    """
    ikm = derivation_input(method=method, network=network, subject=subject, entropy=entropy)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(ikm)


def public_key_multibase(public_key: bytes) -> str:
    """``z`` + base58btc(0xed 0x01 + key): the Multikey encoding and did:key identifier.

    The multicodec prefix ``0xed01`` (ed25519-pub) and the encoding are those
    of the W3C did:key method and Multikey (W3C Controlled Identifiers).

    Parameters
    ----------
    public_key : bytes
        A raw Ed25519 public key (32 bytes).

    Returns
    -------
    str
        The ``z6Mk...`` multibase text.

    Raises
    ------
    IdentifierError
        The key is not 32 bytes long (``field="public_key"``).

    Examples
    --------
    >>> public_key_multibase(bytes(32))
    'z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP'
    """
    if len(public_key) != 32:
        raise IdentifierError("an Ed25519 public key has 32 bytes", field="public_key")
    return "z" + base58btc_encode(ED25519_PUB_CODEC + public_key)


def did_key_from_public_key(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key (W3C did:key method).

    Parameters
    ----------
    public_key : bytes
        A raw Ed25519 public key (32 bytes).

    Returns
    -------
    str
        ``did:key:z6Mk...``.

    Raises
    ------
    IdentifierError
        The key is not 32 bytes long.

    Examples
    --------
    >>> did_key_from_public_key(bytes(32))
    'did:key:z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP'
    """
    return "did:key:" + public_key_multibase(public_key)


def did_web(network: str, subject: str) -> str:
    """``did:web:<network with . as :>:<subject>`` (SPEC section 7).

    Parameters
    ----------
    network : str
        The network; its dots become colons (path segments of did:web).
    subject : str
        The subject.

    Returns
    -------
    str
        The did:web identifier.

    Raises
    ------
    IdentifierError
        The network or subject breaks the SPEC section 7 rules.

    Examples
    --------
    >>> did_web("Tau.Example", "Agent")
    'did:web:tau:example:agent'
    """
    return f"did:web:{normalize_network(network).replace('.', ':')}:{normalize_subject(subject)}"


@dataclass(frozen=True)
class BrowserIdentity:
    """A derived identity; the private key is kept out of ``repr``.

    Attributes
    ----------
    method : Method
        ``key`` or ``web``.
    network : str
        The normalized network.
    subject : str
        The normalized subject.
    did : str
        ``did:key:z6Mk...`` or ``did:web:...``.
    key_id : str
        The verification method id: ``<did>#<multibase>`` or ``<did>#primary``.
    public_key : bytes
        The raw Ed25519 public key (32 bytes).
    private_key : Ed25519PrivateKey
        The private key (never printed, not compared).

    Examples
    --------
    >>> identity = derive_identity(method="web", network="tau-devnet",
    ...                            subject="browser-agent", entropy="demo")
    >>> identity.did, identity.key_id.endswith("#primary"), len(identity.fingerprint)
    ('did:web:tau-devnet:browser-agent', True, 64)
    """

    method: Method
    network: str
    subject: str
    did: str
    key_id: str
    public_key: bytes
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """64-hex SHA-256 of the raw public key."""
        return hashlib.sha256(self.public_key).hexdigest()

    @property
    def public_key_multibase(self) -> str:
        """The public key as Multikey ``publicKeyMultibase``."""
        return public_key_multibase(self.public_key)


def identity_from_seed(seed: bytes, *, method: str, network: str, subject: str) -> BrowserIdentity:
    """Build the identity for a known seed (derivation test vectors start here).

    Parameters
    ----------
    seed : bytes
        An Ed25519 private seed (32 bytes, RFC 8032).
    method : str
        ``key`` or ``web``.
    network : str
        The network.
    subject : str
        The subject.

    Returns
    -------
    BrowserIdentity
        The identity; for did:key the DID is derived from the public key.

    Raises
    ------
    IdentifierError
        An input breaks the SPEC section 7 rules, or the seed is not 32 bytes.

    Examples
    --------
    >>> identity_from_seed(bytes(32), method="key", network="n", subject="s").did[:16]
    'did:key:z6MkiTBz'
    """
    method_n, network_n, subject_n = (
        normalize_method(method), normalize_network(network), normalize_subject(subject))
    if len(seed) != 32:
        raise IdentifierError("an Ed25519 seed has 32 bytes", field="seed")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if method_n == "key":
        did = did_key_from_public_key(public)
        key_id = f"{did}#{public_key_multibase(public)}"
    else:
        did = did_web(network_n, subject_n)
        key_id = f"{did}#primary"
    return BrowserIdentity(method_n, network_n, subject_n, did, key_id, public, private_key)


def derive_identity(
    *, method: str, network: str, subject: str, entropy: str | bytes
) -> BrowserIdentity:
    """Same four inputs, same identity, byte for byte.

    The recipe (:func:`derive_seed` then :func:`identity_from_seed`) is the
    versioned :data:`INTEROPERABILITY_PROFILE`, documented in
    ``docs/guides/browser-did.md``.

    Parameters
    ----------
    method : str
        ``key`` or ``web`` (see :func:`normalize_method`).
    network : str
        The network, e.g. ``tau-devnet`` (see :func:`normalize_network`).
    subject : str
        The subject, e.g. ``browser-agent`` (see :func:`normalize_subject`).
    entropy : str or bytes
        Caller-held secret, used verbatim (str as UTF-8); there is no default.

    Returns
    -------
    BrowserIdentity
        The derived identity.

    Raises
    ------
    IdentifierError
        An input breaks the SPEC section 7 rules, or the entropy is empty or
        only whitespace (``field`` names the input).

    Examples
    --------
    >>> derive_identity(method="key", network="tau-devnet", subject="browser-agent",
    ...                 entropy="demo").did
    'did:key:z6MkuytULu99FELME48SedQdumit4TkjrV9uem16b4vQZqSg'
    """
    seed = derive_seed(method=method, network=network, subject=subject, entropy=entropy)
    return identity_from_seed(seed, method=method, network=network, subject=subject)

