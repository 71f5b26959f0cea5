"""The shared inbox of several workers: leases taken, kept and left; rows in order;
expired leases adopted; a repeat dropped; bodies sealed on PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from bot.cluster.consumer import InboxConsumer
from bot.cluster.inbox import Inbox, Lease, Row
from bot.storage.database import Connection
from bot.transports.telegram.seen import admit_once
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.backends


async def test_a_chat_stays_with_the_worker_that_took_it(open_database: OpenDatabase) -> None:
    db = await open_database()
    a, b = Inbox(db, "a"), Inbox(db, "b")
    assert await a.receive("ana", "1") is Lease.TAKEN
    assert await b.receive("ana", "2") is Lease.LEFT
    assert await a.receive("ana", "3") is Lease.KEPT
    assert await b.receive("ben", "4") is Lease.TAKEN
    mine = await a.claim()
    assert [(r.lane, r.body) for r in mine.rows] == [("ana", "1"), ("ana", "2"), ("ana", "3")]
    assert mine.taken == []
    assert [r.body for r in (await b.claim()).rows] == ["4"]
    for row in mine.rows:
        await a.done(row.seq)
    assert (await a.claim()).rows == []
    await db.close()


async def test_an_expired_lease_with_waiting_rows_is_adopted(open_database: OpenDatabase) -> None:
    db = await open_database()
    dead, alive = Inbox(db, "dead", lease=0.0), Inbox(db, "alive")
    assert await dead.receive("ana", "1") is Lease.TAKEN
    await asyncio.sleep(0.01)  # the dead worker's lease (0 s) is over
    claim = await alive.claim()
    assert claim.taken == ["ana"]
    assert [r.body for r in claim.rows] == ["1"]
    assert await dead.receive("ana", "2") is Lease.LEFT
    await db.close()


async def test_a_silent_workers_chats_are_adopted_though_their_leases_last(
    open_database: OpenDatabase,
) -> None:
    db = await open_database()
    gone, alive = Inbox(db, "gone"), Inbox(db, "alive", alive=0.0)
    assert await gone.receive("ana", "1") is Lease.TAKEN
    await asyncio.sleep(0.01)  # `gone` has not been seen since (alive: 0 s here)
    claim = await alive.claim()
    assert (claim.taken, [r.body for r in claim.rows]) == (["ana"], ["1"])
    assert await Inbox(db, "third").receive("ana", "2") is Lease.LEFT  # alive was seen
    await db.close()


async def test_a_repeat_is_dropped_at_any_worker(open_database: OpenDatabase) -> None:
    db = await open_database()
    a, b = Inbox(db, "a"), Inbox(db, "b")
    assert await a.receive("ana", "1", admit=admit_once(7, 500)) is Lease.TAKEN
    assert await b.receive("ana", "1", admit=admit_once(7, 500)) is None
    assert len((await a.claim()).rows) == 1
    await db.close()


async def test_the_consumer_handles_each_chat_in_order(open_database: OpenDatabase) -> None:
    db = await open_database()
    inbox = Inbox(db, "a")
    seen: list[tuple[str, str, bool]] = []
    consumer: InboxConsumer | None = None

    async def handle(row: Row, fresh: bool) -> None:
        seen.append((row.lane, row.body, fresh))
        if len(seen) == 6 and consumer is not None:
            await consumer.stop()

    consumer = InboxConsumer(inbox, handle, poll=0.05)
    for number in range(3):
        for lane in ("ana", "ben"):
            if await inbox.receive(lane, str(number)) is Lease.TAKEN:
                consumer.taken(lane)
    await asyncio.wait_for(consumer.run(), 20)
    for lane in ("ana", "ben"):
        mine = [(body, fresh) for who, body, fresh in seen if who == lane]
        assert mine == [("0", True), ("1", False), ("2", False)]
    assert (await inbox.claim()).rows == []
    await db.close()


async def test_postgres_keeps_bodies_sealed(
    open_database: OpenDatabase, database_url: str | None
) -> None:
    db = await open_database()
    await Inbox(db, "a").receive("ana", '{"text": "they took my brother"}')

    def raw(conn: Connection) -> str:
        return str(conn.execute("SELECT body FROM inbox").fetchone()[0])

    if database_url is None:
        assert "brother" in await db.run(raw)
    else:
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT body FROM inbox").fetchone()
        assert stored is not None and "brother" not in str(stored[0])
    await db.close()
