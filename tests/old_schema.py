"""A database file as an earlier version of the program left it, for migration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.storage import DbKey
from bot.storage.database import Connection
from bot.storage.migrations import MIGRATIONS
from bot.storage.opening import keyed


def migration_that(does: str) -> int:
    """The schema version just before the one migration whose SQL holds `does`."""
    (found,) = [i for i, script in enumerate(MIGRATIONS) if does in script]
    return found


def old_database(path: Path, key: DbKey, version: int, fill: Callable[[Connection], None]) -> None:
    """Build `path` at schema `version` (its first `version` migrations) and `fill` it; the
    next `Database.open` migrates it as it would an older program's file."""
    conn = keyed(str(path), key)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for number, script in enumerate(MIGRATIONS[:version], start=1):
            conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        conn.execute("BEGIN")
        fill(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()
