"""A key-check value beside the database, so a wrong key is told apart from a damaged file.

SQLCipher cannot tell them apart: a wrong key and a damaged first page both fail the
page's HMAC. `hrd-bot.db.check` holds an HMAC of a constant under a key derived from the
database key (for a passphrase, through PBKDF2 at SQLCipher's own cost, so the file is no
cheaper to guess against than the database). It is checked before the database is opened,
so a wrong key touches no file. It reveals nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from bot.storage.dbkey import DbKey

__all__ = ["check_path", "verify", "write"]

_MAGIC = "hrd-bot-key-check-1"
_LABEL = b"hrd-bot database key check"
_PASSPHRASE_ITERATIONS = 256_000  # SQLCipher 4's own PBKDF2 cost


def check_path(database: Path) -> Path:
    return database.with_name(database.name + ".check")


def _mac(key: DbKey, salt: bytes) -> str:
    raw = key.raw_bytes()
    if raw is None:
        raw = hashlib.pbkdf2_hmac("sha256", key.value.encode(), salt, _PASSPHRASE_ITERATIONS)
    return hmac.new(raw, salt + _LABEL, hashlib.sha256).hexdigest()


def _sum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def verify(path: Path, key: DbKey) -> bool | None:
    """True: the key is right; False: it is wrong; None: no usable check file."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    fields = text.split()
    if len(fields) != 4 or fields[0] != _MAGIC or _sum(" ".join(fields[:3])) != fields[3]:
        return None
    try:
        salt = bytes.fromhex(fields[1])
    except ValueError:
        return None
    return hmac.compare_digest(_mac(key, salt), fields[2])


def write(path: Path, key: DbKey) -> None:
    """Written beside the database, atomically, mode 0600."""
    salt = secrets.token_bytes(16)
    body = f"{_MAGIC} {salt.hex()} {_mac(key, salt)}"
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{body} {_sum(body)}\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
