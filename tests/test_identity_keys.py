"""Ed25519 keys that cannot be forged against: RFC 8032 point checks, bounded decoding."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from tau_ops.errors import IdentifierError
from tau_ops.identity import (
    base58btc_encode,
    check_public_key,
    decode_point,
    did_key_from_public_key,
    document_keys,
    resolve_did_key,
    verify_signature,
)
from tau_ops.identity.keys import D, P, PointError

# The y coordinate of the points of order 8 (libsodium's blocklist and "Taming the
# many EdDSAs", Chalkias et al. 2020); p - Y8 is the other pair.
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def encode(y: int, sign: int = 0) -> bytes:
    """RFC 8032 encoding of (y, sign of x) without any reduction (so y may be >= p)."""
    return (y | (sign << 255)).to_bytes(32, "little")


# The eight small-order points (orders 1, 2, 4, 4, 8, 8, 8, 8) in canonical encoding.
SMALL_ORDER = {
    "identity (order 1)": encode(1),
    "(0, -1) (order 2)": encode(P - 1),
    "(sqrt(-1), 0) (order 4)": encode(0),
    "(-sqrt(-1), 0) (order 4)": encode(0, 1),
    "order 8, y8, x even": encode(Y8),
    "order 8, y8, x odd": encode(Y8, 1),
    "order 8, -y8, x even": encode(P - Y8),
    "order 8, -y8, x odd": encode(P - Y8, 1),
}
# The same points encoded non-canonically: y + p, or x = 0 with the sign bit set.
NON_CANONICAL = {
    "y = p (0 + p)": (encode(P), "non-canonical encoding (y >= p)"),
    "y = p, sign set": (encode(P, 1), "non-canonical encoding (y >= p)"),
    "y = p + 1 (identity + p)": (encode(P + 1), "non-canonical encoding (y >= p)"),
    "y = p + 1, sign set": (encode(P + 1, 1), "non-canonical encoding (y >= p)"),
    "y = 2**255 - 1": (encode(2**255 - 1), "non-canonical encoding (y >= p)"),
    "identity, sign set": (encode(1, 1),
                           "non-canonical encoding (x = 0 with the sign bit set)"),
    "(0, -1), sign set": (encode(P - 1, 1),
                          "non-canonical encoding (x = 0 with the sign bit set)"),
}
# RFC 8032 section 7.1, TEST 1 to 3: public keys of real key pairs.
RFC8032_PUBLIC_KEYS = [
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
]


def test_the_small_order_vectors_are_exactly_libsodiums_blocklist() -> None:
    assert {key.hex() for key in SMALL_ORDER.values()} >= {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    }


@pytest.mark.parametrize("key", SMALL_ORDER.values(), ids=SMALL_ORDER.keys())
def test_small_order_keys_are_refused(key: bytes) -> None:
    decode_point(key)  # a valid encoding of a curve point...
    with pytest.raises(PointError) as caught:
        check_public_key(key)  # ...that is no key
    assert str(caught.value) == "small-order point (it verifies forged signatures)"


@pytest.mark.parametrize(("key", "reason"), NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_encodings_are_refused(key: bytes, reason: str) -> None:
    with pytest.raises(PointError) as caught:
        check_public_key(key)
    assert str(caught.value) == reason


def test_every_y_at_or_above_p_is_refused() -> None:
    for y in range(P, 2**255):
        for sign in (0, 1):
            with pytest.raises(PointError, match="y >= p"):
                decode_point(encode(y, sign))


def _x_squared_is_a_square(y: int) -> bool:
    """Euler's criterion on x^2 = (y^2 - 1) / (d y^2 + 1): is there an x for this y?"""
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    return x2 == 0 or pow(x2, (P - 1) // 2, P) == 1


@pytest.mark.parametrize("y", [2, 7, 8, 11])
def test_keys_off_the_curve_are_refused(y: int) -> None:
    assert not _x_squared_is_a_square(y)
    with pytest.raises(PointError) as caught:
        check_public_key(encode(y))
    assert str(caught.value) == f"not a point of the curve (no x for y={y})"


@pytest.mark.parametrize("y", [3, 4, 5, 6, 9])
def test_points_of_large_order_with_small_y_are_keys(y: int) -> None:
    assert _x_squared_is_a_square(y)
    check_public_key(encode(y))


@pytest.mark.parametrize("hex_key", RFC8032_PUBLIC_KEYS)
def test_rfc8032_public_keys_are_accepted(hex_key: str) -> None:
    check_public_key(bytes.fromhex(hex_key))


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_every_generated_key_is_accepted_and_decodes_to_its_encoding(seed: bytes) -> None:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    check_public_key(public)
    x, y = decode_point(public)
    assert encode(y, x & 1) == public


def test_the_identity_key_forges_under_a_plain_verifier_and_tau_ops_refuses_it() -> None:
    identity_key = SMALL_ORDER["identity (order 1)"]
    forged = encode(1) + bytes(32)  # R = identity, S = 0
    # OpenSSL (through cryptography) accepts it for any message: the threat is real.
    Ed25519PublicKey.from_public_bytes(identity_key).verify(forged, b"any challenge at all")
    did = did_key_from_public_key(identity_key)
    with pytest.raises(IdentifierError) as caught:
        verify_signature(did=did, challenge=b"any challenge at all",
                         signature="z" + base58btc_encode(forged))
    assert caught.value.message == (
        f"did {did!r} is not a usable Ed25519 public key: "
        "small-order point (it verifies forged signatures)")


def test_a_did_key_off_the_curve_does_not_resolve() -> None:
    did = did_key_from_public_key(encode(2))
    with pytest.raises(IdentifierError) as caught:
        resolve_did_key(did)
    assert caught.value.message == (
        f"did {did!r} is not a usable Ed25519 public key: not a point of the curve (no x for y=2)")


def _web_document(multibase: str, *, methods: int = 1) -> dict[str, object]:
    did = "did:web:tau:devnet:browser-agent"
    listed = [{"id": f"{did}#k{i}", "type": "Multikey", "controller": did,
               "publicKeyMultibase": multibase} for i in range(methods)]
    return {"id": did, "verificationMethod": listed, "authentication": [f"{did}#k0"]}


def test_a_document_with_a_small_order_key_is_refused() -> None:
    document = _web_document("z" + base58btc_encode(b"\xed\x01" + encode(1)))
    with pytest.raises(IdentifierError, match="small-order point"):
        document_keys(document)
    with pytest.raises(IdentifierError, match="small-order point"):
        verify_signature(did=str(document["id"]), challenge=b"c",
                         signature="z" + base58btc_encode(encode(1) + bytes(32)),
                         document=document)


def test_other_key_types_in_a_document_are_left_out_not_refused() -> None:
    x25519 = "z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc"  # W3C CCG vector
    assert document_keys(_web_document(x25519)) == {}


def test_hostile_key_lengths_are_refused_before_decoding() -> None:
    hostile = "z" + "6" * 300_000  # 300 kB: base58 decoding it took 17 s
    started = time.perf_counter()
    with pytest.raises(IdentifierError) as caught:
        verify_signature(did="did:web:tau:devnet:browser-agent", challenge=b"c",
                         signature="z" + "1" * 300_000, document=_web_document(hostile))
    with pytest.raises(IdentifierError, match="over the 256-character limit"):
        verify_signature(did="did:key:" + hostile, challenge=b"c", signature="z1")
    assert time.perf_counter() - started < 0.5
    assert caught.value.message == (
        "DID document key 'did:web:tau:devnet:browser-agent#k0' is 300001 characters, "
        "over the 256-character limit")


def test_too_many_verification_methods_are_refused() -> None:
    key = "z6MkpoF9V5URysLS6Qjb7HYz92PnnMBU7nnrMCpZjyyLt8xk"
    assert len(document_keys(_web_document(key, methods=64))) == 64
    with pytest.raises(IdentifierError) as caught:
        document_keys(_web_document(key, methods=65))
    assert caught.value.message == (
        "DID document has 65 verification methods, over the limit of 64")
