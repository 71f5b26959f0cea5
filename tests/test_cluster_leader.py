"""One leader among workers on one PostgreSQL: elected once, replaced when its lock
connection breaks, and the only one whose timed jobs run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from bot.cluster.leader import Leadership
from bot.cluster.timed import LeaderScheduler
from bot.storage import Database
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually

TICK = timedelta(seconds=0.02)


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, within)


@asynccontextmanager
async def worker(
    url: str, name: str, ran: list[str], events: list[str]
) -> AsyncIterator[tuple[Leadership, LeaderScheduler]]:
    """A worker as `hrd-bot run` makes one: its database, its leadership, its timer."""
    db = await Database.open_postgres(url, TEST_KEY)

    def note(what: str) -> Callable[[], Awaitable[None]]:
        async def hook() -> None:
            events.append(f"{name} {what}")

        return hook

    leadership = Leadership(
        url, elected=note("elected"), deposed=note("deposed"), retry=0.1, heartbeat=0.05
    )
    scheduler = LeaderScheduler(lambda: leadership.leading)

    async def job() -> None:
        ran.append(name)

    scheduler.every("tick", job, TICK)
    scheduler.start()
    task = asyncio.create_task(leadership.run())
    try:
        yield leadership, scheduler
    finally:
        await leadership.stop()
        await task
        scheduler.shutdown()
        await db.close()


async def test_one_leads_and_another_takes_over_when_its_connection_breaks(
    pg_server: PgServer,
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    ran: list[str] = []
    events: list[str] = []
    async with worker(url, "a", ran, events) as (a, _):
        await until(lambda: a.leading)
        async with worker(url, "b", ran, events) as (b, timer_b):
            await until(lambda: timer_b.skipped >= 3 and ran.count("a") >= 3)
            assert (a.leading, b.leading) == (True, False)
            assert "b" not in ran
            handover = len(ran)
            assert a.connection is not None
            await a.connection.close()
            await until(lambda: b.leading)
            await until(lambda: ran[handover:].count("b") >= 3)
            assert events[:3] == ["a elected", "a deposed", "b elected"]
            assert "a" not in ran[ran.index("b") :]
            assert (a.leading, b.terms) == (False, 1)
        await until(lambda: a.leading)
    assert events[-1] == "a deposed"


async def test_only_one_of_many_leads(pg_server: PgServer) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    ran: list[str] = []
    events: list[str] = []
    async with (
        worker(url, "a", ran, events) as (a, _),
        worker(url, "b", ran, events) as (b, _),
        worker(url, "c", ran, events) as (c, _),
    ):
        await until(lambda: len(ran) >= 10)
        assert sum(w.leading for w in (a, b, c)) == 1
        assert len(set(ran)) == 1
        assert [e.endswith("elected") for e in events] == [True]
