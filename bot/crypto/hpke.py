"""Seal bytes to an X25519 public key with HPKE (RFC 9180), bound to where they belong.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base mode.
HPKE's `info` goes into the key schedule, so a blob only opens with the exact
context it was sealed for: an answer copied to another case, field or position
fails with `InvalidTag`. `encode_info` makes that context canonical (one byte
string per tuple), length-prefixed (no two tuples collide) and versioned.

A sealed blob is `version byte || enc (32) || ciphertext || tag (16)`. The version
byte lets a later suite live beside this one; an unknown version also raises
`InvalidTag`, so callers have a single "does not open" case to handle.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

__all__ = ["BLOB_OVERHEAD", "InvalidTag", "encode_info", "open_sealed", "seal"]

_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_BLOB_VERSION = b"\x01"
_INFO_MAGIC = b"hrd-bot/hpke-info"
_INFO_VERSION = b"\x01"
_ENC_LENGTH = 32
_TAG_LENGTH = 16
BLOB_OVERHEAD = len(_BLOB_VERSION) + _ENC_LENGTH + _TAG_LENGTH
_MAX_PART = 1 << 16

InfoPart = str | int | bytes


def _encode_part(part: InfoPart) -> bytes:
    """Tag, 4-byte length, value: a string, a bytes value and a number never look alike."""
    if isinstance(part, bool):
        raise TypeError("a boolean is not an info part")
    if isinstance(part, int):
        if not 0 <= part < 1 << 64:
            raise ValueError("an info number must fit in 64 unsigned bits")
        tag, data = b"i", part.to_bytes(8, "big")
    elif isinstance(part, str):
        tag, data = b"s", part.encode("utf-8")
    else:
        tag, data = b"b", bytes(part)
    if len(data) > _MAX_PART:
        raise ValueError("an info part is too long")
    return tag + len(data).to_bytes(4, "big") + data


def encode_info(purpose: str, *parts: InfoPart) -> bytes:
    """The HPKE `info` for `purpose` (e.g. "item") and its context (case id, field, seq)."""
    if not purpose:
        raise ValueError("an info purpose is required")
    encoded = b"".join(_encode_part(p) for p in (purpose, *parts))
    return _INFO_MAGIC + _INFO_VERSION + encoded


def seal(plaintext: bytes, public_key: X25519PublicKey, info: bytes) -> bytes:
    """Encrypt to `public_key`; only its private key and the same `info` open the result."""
    return _BLOB_VERSION + _SUITE.encrypt(plaintext, public_key, info=info)


def open_sealed(blob: bytes, private_key: X25519PrivateKey, info: bytes) -> bytes:
    """Decrypt a `seal` blob; wrong key, wrong info or any altered byte raises `InvalidTag`."""
    if len(blob) < BLOB_OVERHEAD or blob[:1] != _BLOB_VERSION:
        raise InvalidTag
    return _SUITE.decrypt(blob[1:], private_key, info=info)
