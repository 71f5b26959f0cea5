"""One process per data folder: an exclusive `flock` held for the process's lifetime.

Two bots on one folder would run two Matrix sync loops on one device and two writers
on one database. The kernel drops the lock when the process ends, however it ends, so
a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bot.errors import OperatorError

__all__ = ["DataDirLock", "LockedError"]

LOCK_NAME = "hrd-bot.lock"


class LockedError(OperatorError):
    """Another process holds the folder; the message names it and is safe to print."""


class DataDirLock:
    """Held from `acquire` until `release` (or the end of the process)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd = fd

    @classmethod
    def acquire(cls, folder: Path, purpose: str) -> DataDirLock:
        """Take the lock without waiting; `purpose` is what the holder is doing, for the
        message another process prints (e.g. "running the bot")."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
            os.close(fd)
            raise LockedError(
                f"another hrd-bot process is using {folder} ({holder or 'starting'}); "
                "only one process may use a data folder at a time"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # who holds it is a courtesy (a full disk is not)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {purpose}".encode(), 0)
        return cls(folder, fd)

    def release(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1
