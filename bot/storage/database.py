"""One SQLCipher connection driven by one worker thread, so the event loop never waits on disk."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlcipher3

from bot.storage.dbkey import DbKey
from bot.storage.migrations import MIGRATIONS

T = TypeVar("T")
Connection = Any  # sqlcipher3.Connection has no stubs

__all__ = ["Connection", "Database", "WrongKeyError"]


class WrongKeyError(Exception):
    """The key does not open this database file."""


def _connect(path: Path, key: DbKey) -> Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlcipher3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(key.pragma())
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError:
        conn.close()
        raise WrongKeyError(f"the database key does not open {path}") from None
    for pragma in (
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA secure_delete = ON",
        "PRAGMA foreign_keys = ON",
        "PRAGMA temp_store = MEMORY",
    ):
        conn.execute(pragma)
    path.chmod(0o600)
    return conn


def _migrate(conn: Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(f"database schema {version} is newer than this program knows")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")


class Database:
    """Async face of the encrypted database; every call runs on the single DB thread."""

    def __init__(self, path: Path, conn: Connection, executor: ThreadPoolExecutor) -> None:
        self.path = path
        self._conn = conn
        self._executor = executor

    @classmethod
    async def open(cls, path: Path, key: DbKey) -> Database:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlcipher")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, path, key)
            await loop.run_in_executor(executor, _migrate, conn)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, conn, executor)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` on the DB thread; keep it to a few statements."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, self._conn)

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Like `run`, inside BEGIN IMMEDIATE … COMMIT (rolled back on error)."""

        def wrapped(conn: Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.run(wrapped)

    async def setting(self, name: str, make: Callable[[], bytes]) -> bytes:
        """A server-side secret kept inside the encrypted file, created on first use."""

        def get_or_create(conn: Connection) -> bytes:
            row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return bytes(row[0])
            value = make()
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (name, value))
            return value

        return await self.transaction(get_or_create)

    async def secret(self, name: str) -> bytes:
        return await self.setting(name, lambda: secrets.token_bytes(32))

    async def close(self) -> None:
        def finish(conn: Connection) -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

        try:
            await self.run(finish)
        finally:
            self._executor.shutdown(wait=True)
