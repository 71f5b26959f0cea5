"""PostgreSQL storage: the key check, schema versions, the one SQL, sealed fields, outages.

The engine-neutral behaviour (sessions, settings, cases, the outbox) runs on PostgreSQL in
the modules marked `backends`; these are what only PostgreSQL has.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from bot.storage import Database, DbKey, StorageError, WrongKeyError
from bot.storage.connection import Connection, to_pyformat
from bot.storage.fields import SealedFields, UnsealError, field_key
from bot.storage.postgres import PgUnavailableError
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema


@pytest.fixture
def url(pg_server: PgServer) -> str:
    return pg_server.schema_url(fresh_schema(pg_server))


async def test_a_wrong_key_is_refused_and_changes_nothing(url: str) -> None:
    db = await Database.open_postgres(url, TEST_KEY)
    await db.put_setting("kept", b"value")
    await db.close()
    for wrong in (DbKey("cd" * 32), DbKey("a passphrase")):
        with pytest.raises(WrongKeyError, match="does not open"):
            await Database.open_postgres(url, wrong)
    db = await Database.open_postgres(url, TEST_KEY)
    assert await db.read_setting("kept") == b"value"
    await db.close()


async def test_a_passphrase_opens_what_it_sealed(url: str) -> None:
    key = DbKey("correct horse battery staple")
    db = await Database.open_postgres(url, key)
    secret = await db.secret("s")
    await db.close()
    db = await Database.open_postgres(url, key)
    assert await db.secret("s") == secret
    await db.close()


async def test_a_newer_schema_is_refused(url: str) -> None:
    await (await Database.open_postgres(url, TEST_KEY)).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE hrd_bot_meta SET version = version + 100")
    with pytest.raises(StorageError, match="newer"):
        await Database.open_postgres(url, TEST_KEY)


async def test_two_workers_opening_a_new_database_at_once_build_it_once(url: str) -> None:
    first, second = await asyncio.gather(
        Database.open_postgres(url, TEST_KEY), Database.open_postgres(url, TEST_KEY)
    )
    assert await first.secret("shared") == await second.secret("shared")
    await first.close()
    await second.close()


async def test_a_dropped_connection_fails_one_call_and_the_next_reconnects(url: str) -> None:
    db = await Database.open_postgres(url, TEST_KEY)
    await db.put_setting("before", b"1")
    pid = await db.run(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(PgUnavailableError):
        await db.put_setting("lost", b"2")
    await db.put_setting("after", b"3")
    assert await db.read_setting("before") == b"1"
    assert await db.read_setting("after") == b"3"
    await db.close()


async def test_a_failed_call_is_rolled_back_whole(url: str) -> None:
    db = await Database.open_postgres(url, TEST_KEY)

    def half(conn: Connection) -> None:
        conn.execute("INSERT INTO settings (name, value) VALUES ('half', ?)", (b"x",))
        raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError):
        await db.transaction(half)
    assert await db.read_setting("half") is None
    await db.close()


async def test_an_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(PgUnavailableError, match="cannot be reached") as caught:
        await Database.open_postgres(
            "postgresql://u:hunter2@127.0.0.1:9/x?connect_timeout=2", TEST_KEY
        )
    assert "hunter2" not in str(caught.value)


def test_placeholders_become_pyformat_outside_quotes_only() -> None:
    assert to_pyformat("SELECT ? WHERE a LIKE 'x%?' AND b = ?") == (
        "SELECT %s WHERE a LIKE 'x%%?' AND b = %s"
    )


def test_sealed_values_are_bound_to_their_column_and_key() -> None:
    fields = SealedFields(field_key(TEST_KEY, b"salt" * 4))
    sealed = fields.seal("chat_addresses.address", "12345")
    assert sealed.startswith("~") and "12345" not in sealed
    assert sealed == fields.seal("chat_addresses.address", "12345"), "lookups need equality"
    assert fields.unseal("chat_addresses.address", sealed) == "12345"
    with pytest.raises(UnsealError):
        fields.unseal("checkins.chat", sealed)
    other = SealedFields(field_key(DbKey("cd" * 32), b"salt" * 4))
    with pytest.raises(UnsealError):
        other.unseal("chat_addresses.address", sealed)
    with pytest.raises(UnsealError):
        fields.unseal("chat_addresses.address", "12345")
    blob = fields.seal("audit.detail", b"\x00detail")
    assert fields.unseal("audit.detail", blob) == b"\x00detail"
