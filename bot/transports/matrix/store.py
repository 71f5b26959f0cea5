"""nio's end-to-end key store, encrypted as a whole with SQLCipher.

nio's own `pickle_key` only encrypts the Olm/Megolm pickles; its SQLite file keeps
user, device and room ids in clear, and `DefaultStore` writes trust decisions to
plain files. This store keeps nio's schema (trust included, as `SqliteStore` does)
inside one SQLCipher file under a fixed name, so not even the file name holds a
Matrix id. It also remembers which events were handled: nio saves its sync token
before callbacks run, so the transport keeps its own token here, saved only after a
whole batch was handled, and a replayed event must not be answered twice.

The transport's own queries (handled events, the sync position, a left room's traces)
run in one thread of the store's own, never on the event loop; peewee gives that thread
a connection of its own (WAL lets it read and write beside nio's). nio's own calls run
where nio makes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from nio.store import SqliteStore
from peewee import DatabaseError, IntegerField, Model, TextField
from playhouse.sqlcipher_ext import SqlCipherDatabase

from bot.config import ConfigError

__all__ = ["STORE_FILE", "EncryptedStore", "check_passphrase", "forget_room"]

log = logging.getLogger("hrd_bot.matrix")
T = TypeVar("T")

STORE_FILE = "e2e-store.db"
HANDLED_KEEP_SECONDS = 7 * 24 * 3600
_PRAGMAS = {"foreign_keys": 1, "secure_delete": 1, "journal_mode": "wal", "synchronous": "normal"}
_SAVE_POSITION = (
    "INSERT OR REPLACE INTO synctokens (token, account_id) "
    "SELECT ?, id FROM accounts WHERE user_id = ? AND device_id = ?"
)
_LOAD_POSITION = (
    "SELECT token FROM synctokens WHERE account_id IN "
    "(SELECT id FROM accounts WHERE user_id = ? AND device_id = ?)"
)


def _database(path: str, passphrase: str) -> Any:
    if not passphrase:
        raise ConfigError("the Matrix key store passphrase is empty")
    return SqlCipherDatabase(path, passphrase=passphrase, pragmas=_PRAGMAS)


def check_passphrase(store_dir: Path, passphrase: str, user_id: str = "") -> str | None:
    """Refuse to start, before any network call, when the passphrase does not open the store.
    Returns the device of `user_id` whose keys the store holds (the latest), if any."""
    store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store_dir.chmod(0o700)
    path = store_dir / STORE_FILE
    database = _database(str(path), passphrase)
    try:
        database.connect()
        database.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
        device = _device(database, user_id)
    except DatabaseError:
        raise ConfigError(f"MATRIX_STORE_PASSPHRASE does not open {path}") from None
    finally:
        database.close()
    path.chmod(0o600)
    return device


def _device(database: Any, user_id: str) -> str | None:
    tables = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'accounts'"
    if not database.execute_sql(tables).fetchone()[0]:  # nio makes it at the first login
        return None
    sql = "SELECT device_id FROM accounts WHERE user_id = ? ORDER BY id DESC LIMIT 1"
    row = database.execute_sql(sql, (user_id,)).fetchone()
    return None if row is None else str(row[0])


class HandledEvent(Model):  # type: ignore[misc]
    """An event id the bot has already acted on."""

    event_id = TextField(primary_key=True)
    handled_at = IntegerField(index=True)

    class Meta:
        table_name = "handled_events"


class EncryptedStore(SqliteStore):  # type: ignore[misc]
    """`SqliteStore` on SQLCipher; nio's `pickle_key` doubles as the file's passphrase."""

    models: ClassVar[list[type[Model]]] = [*SqliteStore.models, HandledEvent]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="matrix-store")

    def _create_database(self) -> Any:
        return _database(self.database_path, self.pickle_key)

    async def _off_loop(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    async def first_time(self, event_id: str) -> bool:
        """Record `event_id`; False when it was recorded before (a replayed event)."""

        def insert() -> bool:
            cursor = self.database.execute_sql(
                "INSERT OR IGNORE INTO handled_events (event_id, handled_at) VALUES (?, ?)",
                (event_id, int(time.time())),
            )
            return bool(cursor.rowcount == 1)

        return await self._off_loop(insert)

    async def prune_handled(self, now: float | None = None) -> None:
        """Forget handled ids old enough that no sync can replay them."""
        cutoff = int(time.time() if now is None else now) - HANDLED_KEEP_SECONDS
        sql = "DELETE FROM handled_events WHERE handled_at < ?"
        await self._off_loop(lambda: self.database.execute_sql(sql, (cutoff,)))

    async def forget_room(self, room_id: str, present: set[str]) -> list[str]:
        """After the bot left `room_id` (`/forget`, or the person left): the room's Megolm
        sessions and key requests go, and so do the devices (keys, trust, Olm sessions) of
        everyone not in `present`, the people the bot still shares a room with. nio keeps
        them all otherwise, naming the room and the person's user and device ids, long
        after the person asked to be forgotten. Returns the users whose devices went."""
        return await self._off_loop(lambda: self._forget_room(room_id, present))

    def _forget_room(self, room_id: str, present: set[str]) -> list[str]:
        sql = self.database.execute_sql
        with self.database.atomic():
            sql("DELETE FROM megolminboundsessions WHERE room_id = ?", (room_id,))
            sql("DELETE FROM outgoingkeyrequests WHERE room_id = ?", (room_id,))
            sql("DELETE FROM encryptedrooms WHERE room_id = ?", (room_id,))
            known = [str(r[0]) for r in sql("SELECT DISTINCT user_id FROM devicekeys")]
            gone = [user for user in known if user not in present]
            for user_id in gone:
                devices = "SELECT id FROM devicekeys WHERE user_id = ?"
                for table in ("olmsessions", "megolminboundsessions"):
                    sql(
                        f"DELETE FROM {table} WHERE sender_key IN (SELECT key FROM keys "  # noqa: S608  (constant names)
                        f"WHERE key_type = 'curve25519' AND device_id IN ({devices}))",
                        (user_id,),
                    )
                for table in ("keys", "devicetruststate"):
                    sql(f"DELETE FROM {table} WHERE device_id IN ({devices})", (user_id,))  # noqa: S608
                sql("DELETE FROM devicekeys WHERE user_id = ?", (user_id,))
        sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return gone

    async def commit_sync_token(self, token: str) -> None:
        """Save the sync position once everything before it has been handled (in nio's
        own table, as nio's `save_sync_token` would)."""
        args = (token, self.user_id, self.device_id)
        await self._off_loop(lambda: self.database.execute_sql(_SAVE_POSITION, args))

    async def sync_token(self) -> str | None:
        """The position saved last, if any (what nio's `load_sync_token` reads)."""
        args = (self.user_id, self.device_id)
        row = await self._off_loop(
            lambda: self.database.execute_sql(_LOAD_POSITION, args).fetchone()
        )
        return None if row is None else str(row[0])

    async def close(self) -> None:
        """Close the loop's connection (nio's), then the store thread's, which as the
        last one checkpoints the WAL there."""
        self.database.close()
        await self._off_loop(self.database.close)
        self._worker.shutdown(wait=False)


async def forget_room(client: Any, room_id: str) -> None:
    """The store's traces of a room the bot has left, and of the people it now shares no
    room with (staff and everyone in another room with the bot keep their devices)."""
    store = client.store
    if not isinstance(store, EncryptedStore):
        return
    present = {str(client.user_id)}
    for rooms in (client.rooms, client.invited_rooms):
        for rid, room in rooms.items():
            if rid != room_id:
                present.update(room.users)
    try:
        gone = await store.forget_room(room_id, present)
    except DatabaseError as exc:  # the room is left anyway; the operator must know
        log.error("the key store kept a left room's keys (%s)", type(exc).__name__)
        return
    for user in gone:  # nio's memory must not outlive its store: if they come back, it
        client.device_store[user].clear()  # queries their devices again and saves them
        client.olm.tracked_users.discard(user)
