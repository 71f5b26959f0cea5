"""X25519 key pairs, the text form of a public key, and its human-checkable fingerprint.

A public key travels as text (`hrd-bot-x25519-v1:` + unpadded URL-safe base64 of
the 32 raw bytes) so it can be pasted into a command line or a chat; the version
prefix lets another key type come later without guessing. The fingerprint is the
first 16 bytes of SHA-256 over a domain label and the raw key, as 8 blocks of 4 hex
digits, for an operator and a staff member to read to each other and compare.

A private key object never prints its bytes; it lives only on a staff machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from bot.crypto.errors import KeyFormatError

__all__ = ["PUBLIC_PREFIX", "PrivateKey", "PublicKey", "fingerprint"]

PUBLIC_PREFIX = "hrd-bot-x25519-v1:"
_FINGERPRINT_LABEL = b"hrd-bot fingerprint v1\x00"
_RAW_LENGTH = 32


def fingerprint(raw: bytes) -> str:
    """`A1B2 C3D4 …`: 128 bits of SHA-256, enough that nobody can forge a match."""
    digest = hashlib.sha256(_FINGERPRINT_LABEL + raw).hexdigest()[:32].upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _check_usable(key: X25519PublicKey) -> None:
    """Refuse low-order points: sealing to one would give a shared secret anyone knows."""
    try:
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise KeyFormatError("this public key is not usable (a low-order point)") from None


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A validated X25519 public key; build it with `from_text` or `from_raw`."""

    raw: bytes

    @classmethod
    def from_raw(cls, raw: bytes, *, check_point: bool = True) -> PublicKey:
        """`check_point=False` only for keys this program checked before storing them.

        The low-order check costs an X25519 exchange (~50 µs); a key read back from
        the authenticated, encrypted database was checked on the way in, and skipping
        it keeps sealing an answer cheap.
        """
        if len(raw) != _RAW_LENGTH:
            raise KeyFormatError(f"a public key has {_RAW_LENGTH} bytes, not {len(raw)}")
        if check_point:
            _check_usable(X25519PublicKey.from_public_bytes(raw))
        return cls(bytes(raw))

    @classmethod
    def from_text(cls, text: str, *, check_point: bool = True) -> PublicKey:
        text = text.strip()
        if not text.startswith(PUBLIC_PREFIX):
            raise KeyFormatError(f"a public key starts with {PUBLIC_PREFIX!r}")
        body = text[len(PUBLIC_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise KeyFormatError("a public key is base64 after its prefix") from None
        key = cls.from_raw(raw, check_point=check_point)
        if key.text != text:
            raise KeyFormatError("this public key text is not in canonical form")
        return key

    @property
    def text(self) -> str:
        return PUBLIC_PREFIX + base64.urlsafe_b64encode(self.raw).decode("ascii").rstrip("=")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)

    @property
    def key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.raw)

    def same_as(self, other: PublicKey) -> bool:
        """Constant-time equality, for checking a key someone handed us against ours."""
        return hmac.compare_digest(self.raw, other.raw)

    def __str__(self) -> str:
        return self.text


class PrivateKey:
    """An X25519 private key; `repr` and `str` show only the public fingerprint."""

    __slots__ = ("_key", "public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> PrivateKey:
        if len(raw) != _RAW_LENGTH:
            raise KeyFormatError("a private key has 32 bytes")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    @property
    def key(self) -> X25519PrivateKey:
        return self._key

    def raw(self) -> bytes:
        """The secret bytes, for sealing them to someone or into a key file; never log them."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public.fingerprint!r})"

    __str__ = __repr__
