"""Storage faults named for what they are: damaged file, full disk, failing disk.

SQLite reports a full disk as SQLITE_FULL during writes, but as a bare "disk I/O error"
when it cannot even grow its shared-memory file at open; the free space on the folder
tells the two apart. A page that fails SQLCipher's HMAC is SQLITE_NOTADB, a broken
b-tree SQLITE_CORRUPT: both mean the file is damaged once the key is known to be right.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

from bot.errors import HrdBotError, OperatorError

__all__ = [
    "DamagedError",
    "StorageError",
    "StorageFullError",
    "WrongKeyError",
    "classify",
    "report",
]

log = logging.getLogger("hrd_bot.storage")

SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 11, 13, 14
SQLITE_NOTADB = 26
LOW_SPACE = 1024 * 1024  # below this much free space, an I/O error is taken for a full disk
REPORT_EVERY_S = 60.0
RESTORE = "restore it from a backup (see README, Storage faults)"


class StorageError(HrdBotError):
    """The database cannot be read or written; the message is safe to print and log."""


class DamagedError(StorageError):
    """The file is damaged: truncated, emptied, or a page fails its checksum."""


class StorageFullError(StorageError):
    """No space left on the device holding the database."""


class WrongKeyError(OperatorError):
    """The key does not open this database file."""


def damaged(path: Path, what: str) -> DamagedError:
    return DamagedError(f"the database {path} is damaged: {what}; {RESTORE}")


def full(path: Path) -> StorageFullError:
    return StorageFullError(
        f"no space left on the device holding {path.parent}; free some space and try again"
    )


def _low_on_space(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < LOW_SPACE


def classify(exc: BaseException, path: Path) -> StorageError | None:
    """The storage fault behind a database or file-system exception, if it is one."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return full(path)
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary == SQLITE_FULL:
        return full(path)
    if primary in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return damaged(path, "a page fails its checksum or structure check")
    if primary == SQLITE_IOERR:
        if _low_on_space(path.parent):
            return full(path)
        return StorageError(f"the disk holding {path} reports an input/output error")
    if primary == SQLITE_READONLY:
        return StorageError(f"the database {path} cannot be written (read-only file or disk)")
    if primary == SQLITE_CANTOPEN:
        return StorageError(f"the database {path} cannot be opened (check its folder's owner)")
    return None


class _Throttle:
    """At most one log line per kind of fault a minute, with a count of those held back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def report(self, fault: StorageError) -> None:
        kind = type(fault).__name__
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -REPORT_EVERY_S) < REPORT_EVERY_S:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        more = f" ({held} more since the last report)" if held else ""
        log.critical("storage fault: %s%s", fault, more)


report = _Throttle().report
