"""Where the SQLCipher key comes from: the environment, a key file, or (console only) a new file."""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.config import credential_path
from bot.errors import OperatorError

__all__ = ["DbKey", "DbKeyError", "resolve_db_key"]

_MAX_KEY_FILE = 4096
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


class DbKeyError(OperatorError):
    """The key cannot be used; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class DbKey:
    """A raw 256-bit key (fast open) or a passphrase (PBKDF2 inside SQLCipher)."""

    value: str
    created_at: Path | None = None

    def pragma(self) -> str:
        if _HEX_KEY.match(self.value):
            return f"PRAGMA key = \"x'{self.value.lower()}'\""
        quoted = self.value.replace("'", "''")
        return f"PRAGMA key = '{quoted}'"

    def raw_bytes(self) -> bytes | None:
        """The 32 key bytes of a raw key; None for a passphrase."""
        return bytes.fromhex(self.value) if _HEX_KEY.match(self.value) else None

    def __repr__(self) -> str:
        return "DbKey(***)"


def _read_key_file(path: Path, *, private: bool = True) -> str:
    """`private`: refuse a file others may read (a systemd credential is guarded by
    systemd itself, which may grant access through an ACL that shows in the mode)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DbKeyError(f"key file {path} does not exist") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_KEY_FILE:
        raise DbKeyError(f"key file {path} is not a small regular file")
    if private and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DbKeyError(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise DbKeyError(f"key file {path} cannot be read: {reason}") from None
    if not value:
        raise DbKeyError(f"key file {path} is empty")
    return value


def _create_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def resolve_db_key(env: Mapping[str, str], data_dir: Path, *, may_create: bool) -> DbKey:
    """HRD_BOT_DB_KEY, else HRD_BOT_DB_KEY_FILE, else the systemd credential HRD_BOT_DB_KEY,
    else the data dir's key file if allowed."""
    if value := env.get("HRD_BOT_DB_KEY", "").strip():
        return DbKey(value)
    if file := env.get("HRD_BOT_DB_KEY_FILE", "").strip():
        return DbKey(_read_key_file(Path(file)))
    if credential := credential_path(env, "HRD_BOT_DB_KEY"):
        return DbKey(_read_key_file(credential, private=False))
    local = data_dir / "db.key"
    if local.exists():
        return DbKey(_read_key_file(local))
    if not may_create:
        raise DbKeyError(
            "no database key: set HRD_BOT_DB_KEY_FILE or the systemd credential HRD_BOT_DB_KEY "
            "(a deployment keeps the key off the data disk)"
        )
    return DbKey(_create_key_file(local), created_at=local)
