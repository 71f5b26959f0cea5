"""What can go wrong in `bot.crypto`; every message is safe to print and holds no secret.

    CryptoError
    ├── KeyFormatError   a public key text or a field of a file is malformed
    ├── KeyFileError     a private key file cannot be written or opened
    └── BundleError      a case bundle or reseal file is malformed or does not open

A sealed blob that fails authentication raises cryptography's `InvalidTag` at the
lowest layer (`bot.crypto.hpke`); the layers above turn it into one of these.
"""

from __future__ import annotations

from bot.errors import HrdBotError

__all__ = ["BundleError", "CryptoError", "KeyFileError", "KeyFormatError"]


class CryptoError(HrdBotError):
    """Base of every error this package raises on purpose."""


class KeyFormatError(CryptoError):
    """A public key text, fingerprint or key file field is malformed."""


class KeyFileError(CryptoError):
    """A private key file cannot be used: wrong passphrase, altered, wrong place or mode."""


class BundleError(CryptoError):
    """A case bundle or reseal file is malformed, or not sealed to the given key."""
