"""Create files that hold key material or sealed data: mode 0600, never overwriting."""

from __future__ import annotations

import os
from pathlib import Path

from bot.crypto.errors import CryptoError

__all__ = ["write_new_private_file"]


def write_new_private_file(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner can read; refuse to replace one or follow links.

    The mode is set at creation (no window where others could read), and fsync'd so
    a crash right after a key is generated does not leave an empty key file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CryptoError(f"{path} already exists; choose another name") from None
    except OSError as exc:
        raise CryptoError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
