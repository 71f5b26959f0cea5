"""Per-person order across webhook workers: the test that breaks if order breaks.

Two workers on one PostgreSQL, each with its own App, database connection and webhook;
the Balancer posts each person's updates to them in turn, people concurrently. Each
person types a conversation whose answers depend on the one before; every transcript
must be the one a single worker gives. The second test runs the same without the inbox
and leases (each worker handles what it receives) and shows the checker then reports
disorder: one worker is slow, so a person's next message overtakes the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from bot.storage import Database
from tests.cluster_workers import PRESS, SCRIPT, Balancer, Worker, first_disorder, transcript, walk
from tests.cluster_workers import worker as start_worker
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator import Emulator

PEOPLE = 10
SLOW = 0.2  # worker A's extra time per answer
LAPSE = 0.3  # a lease that lapses soon after a chat's last update


@asynccontextmanager
async def balanced(emu: Emulator, workers: list[Worker]) -> AsyncIterator[None]:
    balancer = asyncio.create_task(Balancer(emu, workers).run())
    try:
        yield
    finally:
        balancer.cancel()
        await asyncio.gather(balancer, return_exceptions=True)


async def one_worker_transcript(url: str) -> list[str]:
    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    async with Emulator() as emu, start_worker(emu, open_db, "solo") as solo:
        person = emu.user("Solo")
        async with balanced(emu, [solo]):
            await walk([person], SCRIPT)
        return transcript(person)


async def two_workers(url: str, *, ordered: bool) -> list[list[str]]:
    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    cluster = url if ordered else None
    async with Emulator() as emu, AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(
                start_worker(emu, open_db, "a", cluster_url=cluster, delay=SLOW)
            ),
            await stack.enter_async_context(start_worker(emu, open_db, "b", cluster_url=cluster)),
        ]
        people = [emu.user(f"P{n}") for n in range(PEOPLE)]
        async with balanced(emu, workers):
            await walk(people, SCRIPT)
            await asyncio.sleep(SLOW * 2)  # any answer still coming would be extra
        return [transcript(person) for person in people]


async def test_each_person_is_answered_in_order_across_two_workers(pg_server: PgServer) -> None:
    expected = await one_worker_transcript(pg_server.schema_url(fresh_schema(pg_server)))
    assert len(expected) == len(SCRIPT)
    assert len(set(expected)) > len(SCRIPT) // 2  # the answers tell the steps apart
    got = await two_workers(pg_server.schema_url(fresh_schema(pg_server)), ordered=True)
    assert first_disorder(got, expected) is None


async def test_a_chat_taken_over_by_another_worker_goes_on_where_it_was(
    pg_server: PgServer,
) -> None:
    """Leases that lapse between two halves of the conversation: the second half may go
    to the other worker, which forgets what it remembered of the chat and reads the rest
    from the database, and whose first update presses a button of the other worker's
    last screen; the transcript is still the one-worker one."""
    expected = await one_worker_transcript(pg_server.schema_url(fresh_schema(pg_server)))
    url = pg_server.schema_url(fresh_schema(pg_server))

    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    half = len(SCRIPT) // 2
    async with Emulator() as emu, AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(
                start_worker(emu, open_db, name, cluster_url=url, lease=LAPSE)
            )
            for name in ("a", "b")
        ]
        people = [emu.user(f"P{n}") for n in range(4)]
        async with balanced(emu, workers):
            assert SCRIPT[half] == "◂ Back"
            for part in (SCRIPT[:half], (PRESS + SCRIPT[half], *SCRIPT[half + 1 :])):
                await walk(people, part)
                await asyncio.sleep(LAPSE * 3)  # every lease lapses
        got = [transcript(person) for person in people]
    assert first_disorder(got, expected) is None
    moved = [p for p in people if _served_by_both(str(p.chat.id), workers)]
    assert moved, "no chat changed worker: the test did not test a take-over"


def _served_by_both(chat: str, workers: list[Worker]) -> bool:
    return all(chat in w.handled for w in workers)


async def test_without_the_leases_the_checker_sees_disorder(pg_server: PgServer) -> None:
    expected = await one_worker_transcript(pg_server.schema_url(fresh_schema(pg_server)))
    got = await two_workers(pg_server.schema_url(fresh_schema(pg_server)), ordered=False)
    assert first_disorder(got, expected) is not None
