"""The chat trail names chats by pseudonym and keeps a real address only while a message
there is due to be deleted; the migration re-keys an older file without losing a deletion.
The trail's tests run on SQLCipher and PostgreSQL; the migration's is about SQLCipher files."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.conversation.chat_trail import MOVED, ChatTrail
from bot.conversation.pseudonym import PSEUDONYM_SECRET, Pseudonymizer
from bot.storage import Database
from bot.storage.database import Connection
from tests.conftest import TEST_KEY
from tests.conftest_storage import OpenDatabase
from tests.old_schema import migration_that, old_database

pytestmark = pytest.mark.backends
HOUR = timedelta(hours=1)


async def _table(db: Database, sql: str) -> list[tuple[object, ...]]:
    return await db.run(lambda c: [tuple(r) for r in c.execute(sql).fetchall()])


async def _addresses(db: Database) -> list[str]:
    """As the trail reads them (unsealed on PostgreSQL)."""
    return await db.run(
        lambda c: [
            c.unseal("chat_addresses.address", str(r[0]))
            for r in c.execute("SELECT address FROM chat_addresses").fetchall()
        ]
    )


async def test_rows_name_a_pseudonym_and_the_address_lives_as_long_as_a_due_message(
    open_database: OpenDatabase,
) -> None:
    db = await open_database()
    try:
        trail = ChatTrail(db, "telegram")
        trail.note("5551234567", [("1", None), ("2", HOUR)])
        await trail.record("5557654321", "9")  # no time to live: no address needed
        assert [t.message_id for t in await trail.in_chat("5551234567")] == ["2", "1"]
        chats = {str(r[0]) for r in await _table(db, "SELECT chat FROM chat_messages")}
        names = Pseudonymizer(await db.secret(PSEUDONYM_SECRET))
        assert chats == {names.chat("telegram", "5551234567"), names.chat("telegram", "5557654321")}
        assert (
            names.chat("telegram", "5551234567") != names.user("telegram", "5551234567").pseudonym
        )
        assert await _addresses(db) == ["5551234567"]

        due = await trail.due(time.time() + 3601)
        assert [(t.chat, t.message_id) for t in due] == [("5551234567", "2")]
        await trail.drop([due[0]])
        assert await _addresses(db) == [], "its last due row"
        assert [t.message_id for t in await trail.in_chat("5551234567")] == ["1"], (
            "/forget finds it"
        )

        await trail.record("5551234567", "3", HOUR)
        await db.run(lambda c: c.execute("DELETE FROM chat_messages WHERE message_id = '3'"))
        assert await trail.prune() == 0
        assert await _addresses(db) == [], "a sweep lets go"
        assert await trail.prune(time.time() + 49 * 3600) == 2
        assert await _table(db, "SELECT * FROM chat_messages") == []
    finally:
        await db.close()


def _older_file(conn: Connection) -> None:
    """Before: real addresses in the trail (a deletion pending in chat 777), a closed and
    an open case's reporter links, a closed case's check-in, outbox rows to a person."""
    now = int(time.time())
    conn.executemany(
        "INSERT INTO chat_messages (platform, chat, message_id, sent_at, delete_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            ("telegram", "777", "10", now, now + 60),
            ("telegram", "777", "11", now, None),
            ("telegram", "888", "12", now, None),
            ("matrix", "!room:hs", "$e", now, now + 60),
        ],
    )
    for case, state in (("HRD-OPEN", "new"), ("HRD-SHUT", "closed")):
        conn.execute(
            "INSERT INTO cases (id, public_key, created_at, updated_at, state) "
            "VALUES (?, x'00', ?, ?, ?)",
            (case, now, now, state),
        )
    conn.executemany(
        "INSERT INTO case_reporters VALUES (?, ?, 'telegram', ?, 'en')",
        [("HRD-OPEN", "telegram:a", "777"), ("HRD-SHUT", "telegram:b", "888")],
    )
    conn.execute(
        "INSERT INTO checkins VALUES ('telegram:b', 'HRD-SHUT', 'telegram', '888', 7200, ?, "
        "NULL, NULL)",
        (now,),
    )
    conn.executemany(
        "INSERT INTO outbox (platform, address, private, encrypted, kind, person, state,"
        " created_at, updated_at) VALUES ('telegram', ?, 1, 0, 'reply', ?, ?, 0, 0)",
        [
            ("777", "telegram:a", "queued"),
            ("888", "telegram:b", "delivered"),
            ("-100", None, "failed"),
        ],
    )


async def test_the_migration_moves_addresses_out_and_loses_no_pending_deletion(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old_database(path, TEST_KEY, migration_that("CREATE TABLE chat_addresses"), _older_file)
    db = await Database.open(path, TEST_KEY)
    try:
        chats = [str(r[0]) for r in await _table(db, "SELECT chat FROM chat_messages")]
        assert all(chat.startswith(MOVED) for chat in chats)
        assert len(set(chats)) == 3, "one token per chat"
        telegram, matrix = ChatTrail(db, "telegram"), ChatTrail(db, "matrix")
        due = await telegram.due(time.time() + 61)
        assert [(t.chat, t.message_id) for t in due] == [("777", "10")]
        assert [(t.chat, t.message_id) for t in await matrix.due(time.time() + 61)] == [
            ("!room:hs", "$e")
        ]
        assert [t.message_id for t in await telegram.in_chat("777")] == ["11", "10"]
        assert [t.message_id for t in await telegram.in_chat("888")] == ["12"]

        await telegram.drop([due[0]])
        await telegram.record("777", "13", HOUR)  # a new row beside the moved ones
        assert [t.message_id for t in await telegram.in_chat("777")] == ["13", "11"]
        links = await _table(db, "SELECT case_id, chat FROM case_reporters ORDER BY case_id")
        assert links == [("HRD-OPEN", "777"), ("HRD-SHUT", "")]
        assert await _table(db, "SELECT * FROM checkins") == []
        outbox = await _table(db, "SELECT address, state FROM outbox ORDER BY id")
        assert outbox == [("777", "queued"), ("", "delivered"), ("-100", "failed")]

        assert await telegram.prune(time.time() + 49 * 3600) == 3
        assert await matrix.prune(time.time() + 49 * 3600) == 1
        assert await _table(db, "SELECT * FROM chat_addresses") == []
    finally:
        await db.close()


async def test_a_stale_drop_spares_a_new_row_that_took_the_same_row_id(
    open_database: OpenDatabase, backend: str
) -> None:
    """The sweeper and `/forget` may both hold a row read before the other dropped it;
    SQLite hands the freed last row id to the next row, which must not go with it."""
    if backend == "postgres":
        pytest.skip("PostgreSQL's identity column never hands out a row id twice")
    db = await open_database()
    try:
        trail = ChatTrail(db, "telegram")
        await trail.record("5551234567", "10", HOUR)
        (stale,) = await trail.in_chat("5551234567")
        await trail.drop([stale])
        await trail.record("5551234567", "11", HOUR)
        (fresh,) = await trail.in_chat("5551234567")
        assert fresh.row == stale.row, "the row id was reused (what this test is about)"
        await trail.drop([stale])
        assert [t.message_id for t in await trail.in_chat("5551234567")] == ["11"]
    finally:
        await db.close()
