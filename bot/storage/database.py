"""One database connection driven by one worker thread, so the event loop never waits on it.

The connection is SQLCipher's (one file, the default) or PostgreSQL's (several workers
sharing one database; see `bot.storage.postgres`); owner modules cannot tell them apart
beyond `Connection.sqlite` (see `bot.storage.connection`)."""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import sqlcipher3

from bot.storage import postgres
from bot.storage.checkpointer import BACKSTOP_PAGES, Checkpointer
from bot.storage.connection import Connection
from bot.storage.dbkey import DbKey
from bot.storage.faults import StorageError, WrongKeyError, classify, report
from bot.storage.fields import Fields
from bot.storage.migrations import MIGRATIONS
from bot.storage.opening import SYNC_DEFAULT, SYNC_DURABLE, open_checked

T = TypeVar("T")
log = logging.getLogger("hrd_bot.storage")
_VALUE = "settings.value"

__all__ = ["Connection", "Database", "WrongKeyError", "atomically"]


class NewerSchemaError(StorageError, RuntimeError):
    """Written by a newer version of the bot; this one must not touch it."""


def _migrate(conn: Any) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise NewerSchemaError(f"database schema {version} is newer than this program knows")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")


Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Worker:
    """The one thread that owns the connection. Under load it takes every queued call in
    one wake-up and hands all their results back to the event loop in one callback, so
    a busy bot pays one thread switch per batch, not per statement."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.conn: Connection | None = None
        self._loop = loop
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sqlcipher", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((work, future))
        return future

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._jobs.get()]
            while not self._jobs.empty():
                batch.append(self._jobs.get_nowait())
            stopping = None in batch
            done: list[Outcome] = []
            for job in batch:
                if job is None:
                    continue
                work, future = job
                try:
                    done.append((future, work(self.conn), None))  # type: ignore[arg-type]
                except BaseException as exc:  # re-raised in the awaiting coroutine
                    done.append((future, None, exc))
            self._loop.call_soon_threadsafe(_settle, done)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


def atomically(conn: Connection, work: Callable[[Connection], T], *, durable: bool = False) -> T:
    """`work(conn)` inside BEGIN IMMEDIATE … COMMIT, rolled back on error; on the DB thread.
    Over PostgreSQL every call is already one transaction under the writer lock.

    `durable`: the commit returns only once it is on disk (the WAL is synced, and with it
    every commit before it). Other commits are synced at the next checkpoint or durable
    commit, so a power loss can take back the last few of those, never a durable one."""
    if not conn.sqlite:
        return work(conn) if conn.in_transaction else postgres.locked(conn, work)
    if durable:
        conn.execute(SYNC_DURABLE)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if durable:
            conn.execute(SYNC_DEFAULT)
    return result


def _reporting(path: Path, work: Callable[[Connection], T]) -> Callable[[Connection], T]:
    def guarded(conn: Connection) -> T:
        try:
            return work(conn)
        except sqlcipher3.Error as exc:
            fault = classify(exc, path)
            if fault is None:
                raise
            report(fault)
            raise fault from exc

    return guarded


def _pg_reporting(
    url: str, key: DbKey, worker: _Worker, work: Callable[[Connection], T]
) -> Callable[[Connection], T]:
    """Reconnect when the last connection broke; one transaction under the writer lock."""

    def guarded(_: Connection) -> T:
        conn = worker.conn
        if conn is None or conn.raw.broken or conn.raw.closed:
            worker.conn = conn = postgres.connect(url, key)
        try:
            return postgres.locked(conn, work)
        except psycopg.OperationalError as exc:
            conn.raw.close()
            log.warning("storage: PostgreSQL dropped the connection; the next call reconnects")
            raise postgres.PgUnavailableError("PostgreSQL dropped the connection") from exc

    return guarded


def _settle(done: list[Outcome]) -> None:
    for future, result, error in done:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class Database:
    """Async face of the encrypted database; every call runs on the single DB thread."""

    def __init__(
        self,
        path: Path,
        worker: _Worker,
        checkpointer: Checkpointer | None = None,
        postgres_at: tuple[str, DbKey] | None = None,
    ) -> None:
        self.path = path
        self._worker = worker
        self._checkpointer = checkpointer
        self._postgres = postgres_at
        self.calls = 0  # background work (retention) reads it to see if others are busy

    @property
    def sqlite(self) -> bool:
        return self._postgres is None

    @classmethod
    async def open(cls, path: Path, key: DbKey) -> Database:
        worker = _Worker(asyncio.get_running_loop())

        def connect(_: Connection) -> None:
            conn = open_checked(path, key, _migrate)
            try:
                _migrate(conn)
            except BaseException:
                conn.close()
                raise
            worker.conn = Connection(conn, Fields())

        try:
            await worker.submit(connect)
        except BaseException:
            worker.stop()
            raise
        checkpointer = Checkpointer(path, key)
        if await asyncio.to_thread(checkpointer.start):
            backstop = f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}"
            await worker.submit(lambda conn: conn.execute(backstop))
        return cls(path, worker, checkpointer)

    @classmethod
    async def open_postgres(cls, url: str, key: DbKey) -> Database:
        """A PostgreSQL database shared by several workers (`HRD_BOT_DATABASE_URL`)."""
        worker = _Worker(asyncio.get_running_loop())

        def connect(_: Connection) -> None:
            worker.conn = postgres.connect(url, key)

        try:
            await worker.submit(connect)
        except BaseException:
            worker.stop()
            raise
        return cls(Path(postgres.redacted(url)), worker, None, (url, key))

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` on the DB thread; keep it to a few statements. A full disk or a
        damaged page raises a `StorageError` (and is logged for the operator)."""
        self.calls += 1
        if self._postgres is not None:
            url, key = self._postgres
            return await self._worker.submit(_pg_reporting(url, key, self._worker, work))
        return await self._worker.submit(_reporting(self.path, work))

    async def transaction(self, work: Callable[[Connection], T], *, durable: bool = False) -> T:
        """Like `run`, inside BEGIN IMMEDIATE … COMMIT (rolled back on error). `durable`
        for what a person is told is saved: see `atomically`."""
        return await self.run(lambda conn: atomically(conn, work, durable=durable))

    async def setting(self, name: str, make: Callable[[], bytes]) -> bytes:
        """A server-side secret kept inside the encrypted file, created on first use."""

        def get_or_create(conn: Connection) -> bytes:
            row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return conn.unseal(_VALUE, bytes(row[0]))
            value = make()
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?)", (name, conn.seal(_VALUE, value))
            )
            return value

        return await self.transaction(get_or_create)

    async def read_setting(self, name: str) -> bytes | None:
        """A value kept in the `settings` table (this class is its one writer), or None."""

        def read(conn: Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
            return None if row is None else conn.unseal(_VALUE, bytes(row[0]))

        return await self.run(read)

    async def put_setting(self, name: str, value: bytes) -> None:
        """Set or replace a value in the `settings` table (e.g. a transport's login)."""

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, conn.seal(_VALUE, value)),
            )

        await self.run(write)

    async def secret(self, name: str) -> bytes:
        return await self.setting(name, lambda: secrets.token_bytes(32))

    def empty_wal_soon(self) -> None:
        """Within a checkpoint interval, without waiting here: for a write that replaced
        a secret whose old copy must not stay readable in the WAL (a case's link key)."""
        if self._checkpointer is not None:
            self._checkpointer.empty_soon()

    async def truncate_wal(self, tries: int = 20, pause: float = 0.05) -> bool:
        """Copy the WAL into the file and empty it, so rows just deleted leave no older
        copy in its frames (in the file, `secure_delete` has overwritten them). A
        background checkpoint under way holds it up for a moment: tried again."""
        if not self.sqlite:
            return True  # PostgreSQL: deleted rows held only sealed values
        for _ in range(tries):
            busy = await self.run(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
            if not busy[0]:
                return True
            await asyncio.sleep(pause)
        log.warning("storage: the WAL could not be emptied now; the next checkpoint will")
        return False

    async def close(self) -> None:
        """Merge the WAL and close. On a full disk the merge fails and the WAL stays:
        nothing is lost, the next open replays it."""

        def finish(_: Connection) -> None:
            conn = self._worker.conn
            if conn is None:
                return
            try:
                if conn.sqlite:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()

        try:
            if self._checkpointer is not None:
                await asyncio.to_thread(self._checkpointer.stop)
            await self._worker.submit(_reporting(self.path, finish))
        except StorageError as exc:
            log.warning("storage: closed without merging the WAL: %s", exc)
        finally:
            self._worker.stop()
