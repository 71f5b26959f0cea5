"""Encrypted storage: one SQLCipher file, one worker thread, versioned schema."""

from bot.storage.database import Database
from bot.storage.dbkey import DbKey, DbKeyError, resolve_db_key
from bot.storage.faults import DamagedError, StorageError, StorageFullError, WrongKeyError
from bot.storage.lock import DataDirLock, LockedError

__all__ = [
    "DamagedError",
    "DataDirLock",
    "Database",
    "DbKey",
    "DbKeyError",
    "LockedError",
    "StorageError",
    "StorageFullError",
    "WrongKeyError",
    "resolve_db_key",
]
