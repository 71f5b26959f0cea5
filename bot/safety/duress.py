"""The duress word: kept only as a keyed hash, compared in constant time.

A seized database holds the HMAC of the word under a server secret that lives in the
same encrypted file, bound to the user's key, so the same word of two people gives two
unrelated hashes and nothing can be looked up in a table of common words made elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

__all__ = [
    "DURESS_SECRET",
    "MAX_CHARS",
    "MIN_CHARS",
    "acceptable",
    "digest",
    "matches",
    "normalise",
]

DURESS_SECRET = "duress-secret"  # noqa: S105 - the secret's name, not the secret
MIN_CHARS, MAX_CHARS = 3, 40


def normalise(word: str) -> str:
    """As people type it: Unicode compatibility form, no case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", word).casefold().split())


def acceptable(word: str) -> bool:
    """Long enough not to be typed by chance, short enough to remember; never only digits
    (a number picks a button in a typed chat)."""
    norm = normalise(word)
    return MIN_CHARS <= len(norm) <= MAX_CHARS and not norm.replace(" ", "").isdigit()


def digest(secret: bytes, user_key: str, word: str) -> bytes:
    message = b"duress\x00" + user_key.encode() + b"\x00" + normalise(word).encode()
    return hmac.digest(secret, message, hashlib.sha256)


def matches(secret: bytes, user_key: str, word: str, stored: bytes | None) -> bool:
    """Constant time in the word's content; with nothing stored, a dummy compare keeps
    the cost the same."""
    candidate = digest(secret, user_key, word)
    return hmac.compare_digest(candidate, stored or bytes(32)) and stored is not None
