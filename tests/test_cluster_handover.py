"""The outbox of several workers: a follower's Matrix message is sent by the leader (the
one Matrix device), a dead worker's queued message is adopted by the leader, and a
worker that starts resumes nobody else's messages."""

from __future__ import annotations

from contextlib import AsyncExitStack

from bot.cluster.handover import OutboxHandover
from bot.content.library import Library
from bot.delivery.outcome import Reason, Undelivered
from bot.model import ChatRef, Reply
from tests.cluster_nodes import ROOM, node, sent, true_when
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually

PERSON = ChatRef("telegram", "4242", private=True)


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
