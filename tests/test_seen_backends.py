"""Telegram's seen update ids on SQLCipher and PostgreSQL: one multi-row insert that keeps
an id's first time, whether the id was written before or comes twice in one batch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.storage import Database
from bot.storage.database import Connection
from bot.transports.telegram.seen import SeenUpdates, _writer
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.backends


@pytest.fixture
async def db(open_database: OpenDatabase) -> AsyncIterator[Database]:
    database = await open_database()
    try:
        yield database
    finally:
        await database.close()


async def _rows(db: Database) -> list[tuple[int, int, int]]:
    def read(conn: Connection) -> list[tuple[int, int, int]]:
        found = conn.execute(
            "SELECT bot, update_id, seen_at FROM telegram_updates ORDER BY bot, update_id"
        )
        return [(int(b), int(u), int(s)) for b, u, s in found]

    return await db.run(read)


async def test_a_batch_holding_an_id_twice_and_one_already_written_keeps_each_first_time(
    db: Database,
) -> None:
    await db.transaction(_writer(1, [(7, 100)], None))
    await db.transaction(_writer(1, [(8, 200), (7, 201), (8, 202), (9, 203)], None))
    assert await _rows(db) == [(1, 7, 100), (1, 8, 200), (1, 9, 203)]


async def test_more_ids_than_one_statement_takes_are_all_written_and_old_ones_pruned(
    db: Database,
) -> None:
    await db.transaction(_writer(2, [(1, 10)], None))
    batch = [(n, 1000) for n in range(2, 702)] + [(5, 1001)]
    await db.transaction(_writer(2, batch, prune_before=500))
    found = await _rows(db)
    assert len(found) == 700
    assert (2, 1, 10) not in found, "older than the cut-off: pruned in the same write"
    assert (2, 5, 1000) in found


async def test_ids_taken_are_remembered_by_the_next_start_and_by_no_other_bot(
    db: Database,
) -> None:
    seen = SeenUpdates(db)
    await seen.load(bot_id=1)
    assert all(seen.admit(n) for n in (500, 501))
    await seen.flush()
    again = SeenUpdates(db)
    await again.load(bot_id=1)
    assert again.seen(500) and again.seen(501)
    assert not again.admit(500)
    other = SeenUpdates(db)
    await other.load(bot_id=2)
    assert not other.seen(500)
