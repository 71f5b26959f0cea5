"""The Matrix position and handled event ids shared by the workers: an event is first
for one worker only, a position one worker saved is the one the next reads, old ids go,
and the account is sealed on PostgreSQL."""

from __future__ import annotations

import time

import pytest

from bot.cluster.matrix_position import KEEP_SECONDS, SharedPosition
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.backends

BOT = "@hrd-bot:example.org"


async def test_an_event_is_first_for_one_worker_only(open_database: OpenDatabase) -> None:
    one, two = await open_database(), await open_database()
    a, b = SharedPosition(one, BOT), SharedPosition(two, BOT)
    assert await a.first_time("$event-1")
    assert not await b.first_time("$event-1")
    assert not await a.first_time("$event-1")
    assert await b.first_time("$event-2")
    assert not await a.first_time("$event-2")
    await one.close()
    await two.close()


async def test_the_position_one_worker_saved_is_the_one_the_next_reads(
    open_database: OpenDatabase,
) -> None:
    one, two = await open_database(), await open_database()
    a, b = SharedPosition(one, BOT), SharedPosition(two, BOT)
    assert await b.sync_token() is None
    await a.commit_sync_token("s10_1")
    assert await b.sync_token() == "s10_1"
    await b.commit_sync_token("s12_4")
    assert await a.sync_token() == "s12_4"
    assert await SharedPosition(one, "@other:example.org").sync_token() is None
    await one.close()
    await two.close()


async def test_old_handled_ids_are_forgotten(open_database: OpenDatabase) -> None:
    db = await open_database()
    shared = SharedPosition(db, BOT)
    assert await shared.first_time("$old")
    await shared.prune_handled(time.time() + KEEP_SECONDS - 60)
    assert not await shared.first_time("$old")  # still within the window
    await shared.prune_handled(time.time() + KEEP_SECONDS + 60)
    assert await shared.first_time("$old")
    await db.close()


async def test_the_account_is_sealed_at_rest(open_database: OpenDatabase, backend: str) -> None:
    db = await open_database()
    await SharedPosition(db, BOT).commit_sync_token("s10_1")

    def stored(conn: Connection) -> object:
        return conn.execute("SELECT account FROM matrix_positions").fetchone()[0]

    account = await db.run(stored)
    assert (account == BOT) is (backend == "sqlcipher")
    await db.close()
