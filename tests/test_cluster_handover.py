"""The outbox of several workers: a follower's Matrix message is sent by the leader (the
one Matrix device), a dead worker's queued message is adopted by the leader, and a
worker that starts resumes nobody else's messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.app import App
from bot.cluster.handover import OutboxHandover
from bot.cluster.leader import Leadership
from bot.cluster.worker import delivering, leader_only
from bot.content.library import Library
from bot.delivery.outcome import Reason, Undelivered
from bot.model import ChatRef, Reply
from bot.storage import Database
from tests.fakes import FakeTransport
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually

ROOM = ChatRef("matrix", "!staff:example.org", private=False, encrypted=True)
PERSON = ChatRef("telegram", "4242", private=True)


@dataclass
class Node:
    app: App
    leadership: Leadership
    matrix: list[FakeTransport]
    telegram: FakeTransport


@asynccontextmanager
async def node(url: str, library: Library) -> AsyncIterator[Node]:
    """A worker as `hrd-bot run` wires one: leadership, Matrix on the leader only, handover."""
    db = await Database.open_postgres(url, TEST_KEY)
    app = await App.open(db, library)
    leadership = Leadership(url, retry=0.1, heartbeat=0.05)
    made: list[FakeTransport] = []

    def matrix() -> FakeTransport:
        made.append(FakeTransport(name="matrix"))
        return made[-1]

    telegram = FakeTransport(name="telegram", idempotent=True)
    app.attach(leader_only(matrix, leadership, app, name="matrix", idempotent=True))
    app.attach(telegram)
    tasks = [asyncio.create_task(leadership.run())]
    tasks += [asyncio.create_task(t.run(app.handle)) for t in app.transports.values()]
    try:
        async with delivering(app, leadership, url):
            yield Node(app, leadership, made, telegram)
    finally:
        for transport in app.transports.values():
            await transport.stop()
        await leadership.stop()
        await asyncio.gather(*tasks)
        await app.outbox.close()
        await db.close()


def sent(transports: list[FakeTransport]) -> list[str]:
    return [reply.text for t in transports for _, reply in t.sent]


async def true_when(check: bool) -> bool:
    return check


async def test_a_followers_matrix_message_is_sent_by_the_leader(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with node(url, library) as a:
        await eventually(lambda: true_when(a.leadership.leading), 10)
        async with node(url, library) as b:
            assert not b.leadership.leading
            await b.app.deliver(ROOM, Reply("new case: 7"), kind="alert")
            await b.app.deliver(PERSON, Reply("your report is in"))
            await eventually(lambda: true_when(sent(a.matrix) == ["new case: 7"]), 10)
            await eventually(lambda: true_when(sent([b.telegram]) == ["your report is in"]))
            assert b.matrix == [] and a.telegram.sent == []


async def test_a_dead_workers_queued_message_is_adopted_by_the_leader(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with node(url, library) as a:
        await eventually(lambda: true_when(a.leadership.leading), 10)
        async with AsyncExitStack() as dying:
            b = await dying.enter_async_context(node(url, library))
            b.telegram.faults = [_down() for _ in range(1000)]
            await b.app.deliver(PERSON, Reply("checking in"), kind="checkin")
            await b.telegram.tries(PERSON.address, 1)
        assert a.telegram.sent == []  # b's row was alive until b stopped
        lost = a.app.casework.lost
        # stale=-1: as if a minute had passed without b marking its row alive
        handover = OutboxHandover(a.app.db, a.app.outbox, a.leadership, lost, stale=-1.0)
        await handover.adopt()
        await eventually(lambda: true_when(sent([a.telegram]) == ["checking in"]), 10)
        assert handover.adopted == 1


def _down() -> Undelivered:
    return Undelivered(Reason.UNREACHABLE, transient=True)
