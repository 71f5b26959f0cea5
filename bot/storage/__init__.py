"""Encrypted storage: one SQLCipher file, one worker thread, versioned schema."""

from bot.storage.database import Database, WrongKeyError
from bot.storage.dbkey import DbKey, KeyError_, resolve_db_key

__all__ = ["Database", "DbKey", "KeyError_", "WrongKeyError", "resolve_db_key"]
