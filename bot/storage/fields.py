"""Column values the application encrypts itself where the database does not.

SQLCipher encrypts every page, so its `Fields` hand values through unchanged. PostgreSQL
stores what it is given: there every sensitive column (a chat address, a session's
state, a staff member's name, an audit detail, a server secret) is sealed before it
leaves the process, so a copy of the PostgreSQL data plus the bot's configuration,
without the database key, yields no platform id and no report content.

Sealing is AES-SIV (RFC 5297), deterministic on purpose: the same address seals to the
same text, so `WHERE address = ?` with a sealed parameter still finds its row, and
nothing else is revealed than which rows hold equal values (what an index would show).
The column's name is the associated data, so a value cannot be moved into another
column and read there. The key is derived from the database key (HKDF for a raw key,
scrypt with a stored salt for a passphrase) and never written anywhere.
"""

from __future__ import annotations

import base64
from typing import TypeVar, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bot.storage.dbkey import DbKey
from bot.storage.faults import StorageError

__all__ = ["Fields", "SealedFields", "UnsealError", "field_key"]

V = TypeVar("V", str, bytes)
_TEXT = "~"
_INFO = b"hrd-bot postgres fields v1"


class UnsealError(StorageError, ValueError):
    """A sealed value that this key did not seal, or that was altered."""


class Fields:
    """The identity: for SQLCipher, whose pages are already encrypted."""

    @overload
    def seal(self, column: str, value: V) -> V: ...
    @overload
    def seal(self, column: str, value: None) -> None: ...
    def seal(self, column: str, value: V | None) -> V | None:
        return None if value is None else self._seal(column, value)

    @overload
    def unseal(self, column: str, value: V) -> V: ...
    @overload
    def unseal(self, column: str, value: None) -> None: ...
    def unseal(self, column: str, value: V | None) -> V | None:
        return None if value is None else self._unseal(column, value)

    def _seal(self, column: str, value: V) -> V:
        return value

    def _unseal(self, column: str, value: V) -> V:
        return value


class SealedFields(Fields):
    """Text seals to `~` and URL-safe base64; bytes seal to bytes."""

    def __init__(self, key: bytes) -> None:
        self._siv = AESSIV(key)

    def _seal(self, column: str, value: V) -> V:
        if isinstance(value, str):
            sealed = self._siv.encrypt(value.encode(), [column.encode()])
            return _TEXT + base64.urlsafe_b64encode(sealed).decode("ascii")
        return self._siv.encrypt(bytes(value), [column.encode()])

    def _unseal(self, column: str, value: V) -> V:
        try:
            if isinstance(value, str):
                if not value.startswith(_TEXT):
                    raise UnsealError(f"{column}: a value that was not sealed")
                raw = base64.urlsafe_b64decode(value[len(_TEXT) :])
                return self._siv.decrypt(raw, [column.encode()]).decode()
            return self._siv.decrypt(bytes(value), [column.encode()])
        except (InvalidTag, ValueError) as exc:
            raise UnsealError(f"{column}: a sealed value this key cannot open") from exc


def field_key(key: DbKey, salt: bytes) -> bytes:
    """512 bits for AES-SIV from the database key; a passphrase is stretched first."""
    raw = key.raw_bytes()
    if raw is None:
        raw = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(key.value.encode())
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=_INFO).derive(raw)
