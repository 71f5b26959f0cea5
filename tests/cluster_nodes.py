"""Workers as `hrd-bot run` wires them with several on one PostgreSQL, for the outbox tests:
leadership, Matrix (a fake) on the leader only, Telegram (a fake) everywhere, the
handover and the relay (`bot.cluster.worker.delivering`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.app import App
from bot.cluster.leader import Leadership
from bot.cluster.relay import Relay
from bot.cluster.worker import delivering, leader_only
from bot.content.library import Library
from bot.delivery.outcome import Reason, Undelivered
from bot.model import ChatRef
from bot.storage import Database
from tests.fakes import FakeTransport
from tests.keys import TEST_KEY

__all__ = ["ROOM", "Node", "node", "sent", "true_when"]

ROOM = ChatRef("matrix", "!staff:example.org", private=False, encrypted=True)


@dataclass
class Node:
    app: App
    leadership: Leadership
    matrix: list[FakeTransport]
    telegram: FakeTransport
    relay: Relay | None = None


@asynccontextmanager
async def node(
    url: str, library: Library, *, adopts: bool = True, refuse: bool = False, hears: bool = True
) -> AsyncIterator[Node]:
    """A worker; `adopts=False`: one that never adopts (a leader that publishes its key,
    as if it died before adopting); `hears=False`: its relay hears no NOTIFY (polls);
    `refuse`: its Matrix refuses."""
    db = await Database.open_postgres(url, TEST_KEY)
    app = await App.open(db, library)
    leadership = Leadership(url, retry=0.1, heartbeat=0.05)
    made: list[FakeTransport] = []

    def matrix() -> FakeTransport:
        made.append(FakeTransport(name="matrix"))
        if refuse:
            made[-1].refuse[ROOM.address] = Undelivered(Reason.REFUSED)
        return made[-1]

    telegram = FakeTransport(name="telegram", idempotent=True)
    app.attach(leader_only(matrix, leadership, app, name="matrix", idempotent=True))
    app.attach(telegram)
    tasks = [asyncio.create_task(leadership.run())]
    tasks += [asyncio.create_task(t.run(app.handle)) for t in app.transports.values()]
    try:
        if adopts:
            async with delivering(app, leadership, url):
                yield Node(app, leadership, made, telegram)
        else:
            relay = Relay(db, leadership, url=url if hears else None, poll=2.0 if hears else 0.2)
            relay.attach(app.outbox)
            tasks.append(asyncio.create_task(relay.run()))
            try:
                yield Node(app, leadership, made, telegram, relay)
            finally:
                await relay.stop()
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
