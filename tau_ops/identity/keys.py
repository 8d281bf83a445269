"""Ed25519 public keys that cannot be forged against: bounded decoding and RFC 8032 point checks.

Every public key tau-ops trusts (a did:key, a DID document's
``publicKeyMultibase``) enters through :func:`public_key_from_multibase`,
which bounds the text before base58 decoding (decoding is quadratic in the
length) and then :func:`check_public_key`, which refuses encodings that a
plain verifier would accept although no private key stands behind them.

OpenSSL (and so ``cryptography``) loads any 32 bytes as an Ed25519 public
key and does not reject small-order points: with the identity point
``01 00..00`` as the key, the signature ``R = identity, S = 0`` verifies
for every message. ``cryptography`` still does the signature arithmetic
(and refuses ``S >= L``); this module only decides which keys are keys.
"""

from __future__ import annotations

from typing import Final

from tau_ops.errors import IdentifierError
from tau_ops.identity.derive import ED25519_PUB_CODEC, base58btc_decode

P: Final = 2**255 - 19
"""The field prime of edwards25519."""
D: Final = (-121665 * pow(121666, -1, P)) % P
"""The curve constant d = -121665/121666 (RFC 8032, section 5.1)."""
_SQRT_M1: Final = pow(2, (P - 1) // 4, P)
_IDENTITY: Final = (0, 1)

MAX_KEY_MULTIBASE_CHARS: Final = 256
"""Longest multibase key text decoded: an Ed25519 key needs 48 characters (``z6Mk...``),
the largest Multikey (BLS12-381 G2, 96 bytes) about 135; longer texts are refused unread."""
MAX_SIGNATURE_MULTIBASE_CHARS: Final = 128
"""Longest ``z...`` text decoded as a signature; a 64-byte signature needs at most 89+1."""


class PointError(ValueError):
    """32 bytes that are not an acceptable Ed25519 public key; the message says why."""


def decode_point(encoded: bytes) -> tuple[int, int]:
    """Decode a 32-byte Ed25519 point as RFC 8032, section 5.1.3, strictly.

    Parameters
    ----------
    encoded : bytes
        The 32-byte encoding: y little-endian in bits 0..254, the sign of x in bit 255.

    Returns
    -------
    tuple of int
        The affine coordinates ``(x, y)``, both in ``[0, p)``.

    Raises
    ------
    PointError
        Not 32 bytes; ``y >= p`` (a non-canonical encoding, step 1); no square
        root for ``x`` (the point is not on the curve, step 3); or ``x = 0``
        with the sign bit set (the non-canonical encoding of step 4).

    Examples
    --------
    >>> decode_point(bytes([1]) + bytes(31))
    (0, 1)
    >>> decode_point(bytes([2]) + bytes(31))
    Traceback (most recent call last):
    ...
    tau_ops.identity.keys.PointError: not a point of the curve (no x for y=2)
    """
    if len(encoded) != 32:
        raise PointError(f"an Ed25519 public key has 32 bytes, not {len(encoded)}")
    number = int.from_bytes(encoded, "little")
    sign = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= P:
        raise PointError("non-canonical encoding (y >= p)")
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    vxx = (v * x * x) % P
    if vxx == u:
        pass
    elif vxx == (-u) % P:
        x = (x * _SQRT_M1) % P
    else:
        raise PointError(f"not a point of the curve (no x for y={y})")
    if x == 0 and sign == 1:
        raise PointError("non-canonical encoding (x = 0 with the sign bit set)")
    if x & 1 != sign:
        x = P - x
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine twisted Edwards addition (a = -1); complete on edwards25519."""
    (x1, y1), (x2, y2) = a, b
    t = (D * x1 * x2 * y1 * y2) % P
    x3 = ((x1 * y2 + y1 * x2) * pow(1 + t, -1, P)) % P
    y3 = ((y1 * y2 + x1 * x2) * pow(1 - t, -1, P)) % P
    return x3, y3


def has_small_order(point: tuple[int, int]) -> bool:
    """True when ``8 * point`` is the identity (order 1, 2, 4 or 8: the torsion points).

    >>> has_small_order((0, 1))
    True
    """
    for _ in range(3):
        point = _add(point, point)
    return point == _IDENTITY


def check_public_key(public_key: bytes) -> None:
    """Refuse an Ed25519 public key that is non-canonical, off the curve, or of small order.

    Parameters
    ----------
    public_key : bytes
        The raw 32-byte key.

    Raises
    ------
    PointError
        Says which rule the key breaks: :func:`decode_point`'s, or "small-order
        point" (any signature with ``R`` of small order and ``S = 0`` would
        verify under it for every message).

    Examples
    --------
    >>> check_public_key(bytes([1]) + bytes(31))
    Traceback (most recent call last):
    ...
    tau_ops.identity.keys.PointError: small-order point (it verifies forged signatures)
    """
    if has_small_order(decode_point(public_key)):
        raise PointError("small-order point (it verifies forged signatures)")


def multibase_bytes(
    text: str, *, what: str, field: str, limit: int = MAX_KEY_MULTIBASE_CHARS
) -> bytes:
    """The bytes of a multibase base58btc text (``z...``), its length bounded before decoding.

    Parameters
    ----------
    text : str
        ``z`` + base58btc.
    what : str
        What the text is, for messages.
    field : str
        The :class:`~tau_ops.errors.IdentifierError` field.
    limit : int, default :data:`MAX_KEY_MULTIBASE_CHARS`
        Longest text accepted, in characters.

    Returns
    -------
    bytes
        The decoded bytes.

    Raises
    ------
    IdentifierError
        Longer than ``limit``, no ``z`` prefix, or a character outside base58btc.

    Examples
    --------
    >>> multibase_bytes("z2g", what="x", field="x")
    b'a'
    """
    if len(text) > limit:
        raise IdentifierError(
            f"{what} is {len(text)} characters, over the {limit}-character limit", field=field)
    if not text.startswith("z"):
        raise IdentifierError(f"{what} is not multibase base58btc (z...)", field=field)
    try:
        return base58btc_decode(text[1:])
    except ValueError as exc:
        raise IdentifierError(f"{what} is not base58btc: {exc}", field=field) from exc


def public_key_from_multibase(text: str, *, what: str, field: str = "did") -> bytes:
    """The checked 32-byte Ed25519 key of a Multikey ``z6Mk...`` text.

    Parameters
    ----------
    text : str
        ``z`` + base58btc(``0xed 0x01`` + key), at most :data:`MAX_KEY_MULTIBASE_CHARS`
        characters (checked before decoding).
    what : str
        What the text is, for messages (``"did 'did:key:z...'"``).
    field : str, default ``"did"``
        The :class:`~tau_ops.errors.IdentifierError` field.

    Returns
    -------
    bytes
        The raw public key, accepted by :func:`check_public_key`.

    Raises
    ------
    IdentifierError
        Too long, not base58btc, not the ``ed25519-pub`` multicodec with 32
        bytes, or a key :func:`check_public_key` refuses (exit status 2).

    Examples
    --------
    >>> public_key_from_multibase("z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    ...                           what="key").hex()[:8]
    '3b6a27bc'
    """
    raw = multibase_bytes(text, limit=MAX_KEY_MULTIBASE_CHARS, what=what, field=field)
    if not raw.startswith(ED25519_PUB_CODEC) or len(raw) != 34:
        raise IdentifierError(
            f"{what} is not an Ed25519 key (multicodec 0xed01, 32-byte key)", field=field)
    try:
        check_public_key(raw[2:])
    except PointError as exc:
        raise IdentifierError(f"{what} is not a usable Ed25519 public key: {exc}",
                              field=field) from exc
    return raw[2:]


def multikey_ed25519(text: str, *, what: str, field: str = "document") -> bytes | None:
    """The checked Ed25519 key of a ``publicKeyMultibase``, or None for another key type.

    Parameters
    ----------
    text : str
        A Multikey ``publicKeyMultibase`` value, at most :data:`MAX_KEY_MULTIBASE_CHARS`
        characters (checked before decoding).
    what : str
        What the text is, for messages.
    field : str, default ``"document"``
        The :class:`~tau_ops.errors.IdentifierError` field.

    Returns
    -------
    bytes or None
        The raw 32-byte key when the multicodec is ``ed25519-pub``; None for a
        well-formed key of another type (X25519, P-256...), which an Ed25519
        signature can never match.

    Raises
    ------
    IdentifierError
        Too long, not base58btc, or an ``ed25519-pub`` key that is not 32
        bytes or that :func:`check_public_key` refuses.

    Examples
    --------
    >>> multikey_ed25519("z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", what="key") is None
    True
    """
    raw = multibase_bytes(text, limit=MAX_KEY_MULTIBASE_CHARS, what=what, field=field)
    if not raw.startswith(ED25519_PUB_CODEC):
        return None
    return public_key_from_multibase(text, what=what, field=field)


def signature_from_multibase(text: str) -> bytes | None:
    """The 64 raw bytes of a ``z...`` signature, or None when it cannot be one.

    The length is bounded before decoding, so a hostile signature costs no
    more than a real one. A malformed signature is simply invalid (None).

    >>> signature_from_multibase("z" + "1" * 200) is None
    True
    """
    if len(text) > MAX_SIGNATURE_MULTIBASE_CHARS:
        return None
    try:
        raw = multibase_bytes(text, limit=MAX_SIGNATURE_MULTIBASE_CHARS,
                              what="signature", field="signature")
    except IdentifierError:
        return None
    return raw if len(raw) == 64 else None
