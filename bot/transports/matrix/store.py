"""nio's end-to-end key store, encrypted as a whole with SQLCipher.

nio's own `pickle_key` only encrypts the Olm/Megolm pickles; its SQLite file keeps
user, device and room ids in clear, and `DefaultStore` writes trust decisions to
plain files. This store keeps nio's schema (trust included, as `SqliteStore` does)
inside one SQLCipher file under a fixed name, so not even the file name holds a
Matrix id. It also remembers which events were handled: nio saves its sync token
before callbacks run, so the transport keeps its own token here, saved only after a
whole batch was handled, and a replayed event must not be answered twice.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar, cast

from nio.store import SqliteStore
from peewee import DatabaseError, IntegerField, Model, TextField
from playhouse.sqlcipher_ext import SqlCipherDatabase

from bot.config import ConfigError

__all__ = ["STORE_FILE", "EncryptedStore", "check_passphrase", "forget_room"]

log = logging.getLogger("hrd_bot.matrix")

STORE_FILE = "e2e-store.db"
HANDLED_KEEP_SECONDS = 7 * 24 * 3600
_PRAGMAS = {"foreign_keys": 1, "secure_delete": 1, "journal_mode": "wal", "synchronous": "normal"}


def _database(path: str, passphrase: str) -> Any:
    if not passphrase:
        raise ConfigError("the Matrix key store passphrase is empty")
    return SqlCipherDatabase(path, passphrase=passphrase, pragmas=_PRAGMAS)


def check_passphrase(store_dir: Path, passphrase: str) -> None:
    """Refuse to start, before any network call, when the passphrase does not open the store."""
    store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store_dir.chmod(0o700)
    path = store_dir / STORE_FILE
    database = _database(str(path), passphrase)
    try:
        database.connect()
        database.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseError:
        raise ConfigError(f"MATRIX_STORE_PASSPHRASE does not open {path}") from None
    finally:
        database.close()
    path.chmod(0o600)


class HandledEvent(Model):  # type: ignore[misc]
    """An event id the bot has already acted on."""

    event_id = TextField(primary_key=True)
    handled_at = IntegerField(index=True)

    class Meta:
        table_name = "handled_events"


class EncryptedStore(SqliteStore):  # type: ignore[misc]
    """`SqliteStore` on SQLCipher; nio's `pickle_key` doubles as the file's passphrase."""

    models: ClassVar[list[type[Model]]] = [*SqliteStore.models, HandledEvent]

    def _create_database(self) -> Any:
        return _database(self.database_path, self.pickle_key)

    def first_time(self, event_id: str) -> bool:
        """Record `event_id`; False when it was recorded before (a replayed event)."""
        cursor = self.database.execute_sql(
            "INSERT OR IGNORE INTO handled_events (event_id, handled_at) VALUES (?, ?)",
            (event_id, int(time.time())),
        )
        return bool(cursor.rowcount == 1)

    def prune_handled(self, now: float | None = None) -> None:
        """Forget handled ids old enough that no sync can replay them."""
        cutoff = int(time.time() if now is None else now) - HANDLED_KEEP_SECONDS
        self.database.execute_sql("DELETE FROM handled_events WHERE handled_at < ?", (cutoff,))

    def forget_room(self, room_id: str, present: set[str]) -> list[str]:
        """After the bot left `room_id` (`/forget`, or the person left): the room's Megolm
        sessions and key requests go, and so do the devices (keys, trust, Olm sessions) of
        everyone not in `present`, the people the bot still shares a room with. nio keeps
        them all otherwise, naming the room and the person's user and device ids, long
        after the person asked to be forgotten. Returns the users whose devices went."""
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

    def commit_sync_token(self, token: str) -> None:
        """Save the sync position once everything before it has been handled."""
        self.save_sync_token(token)

    def sync_token(self) -> str | None:
        return cast("str | None", self.load_sync_token())

    def close(self) -> None:
        self.database.close()


def forget_room(client: Any, room_id: str) -> None:
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
        gone = store.forget_room(room_id, present)
    except DatabaseError as exc:  # the room is left anyway; the operator must know
        log.error("the key store kept a left room's keys (%s)", type(exc).__name__)
        return
    for user in gone:  # nio's memory must not outlive its store: if they come back, it
        client.device_store[user].clear()  # queries their devices again and saves them
        client.olm.tracked_users.discard(user)
