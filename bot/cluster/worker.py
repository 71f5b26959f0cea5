"""A worker of several on one PostgreSQL: its leadership, and the timer only the leader runs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Protocol

from bot.cluster.handover import OutboxHandover
from bot.cluster.leader import Leadership
from bot.cluster.leader_only import LeaderOnly
from bot.cluster.matrix_position import SharedPosition
from bot.cluster.relay import Relay
from bot.cluster.timed import LeaderScheduler
from bot.model import Transport
from bot.scheduler import Scheduler

if TYPE_CHECKING:
    from bot.app import App

__all__ = ["Membership", "Timed", "clustered", "delivering", "leader_only", "matrix_position"]


@dataclass(frozen=True, slots=True)
class Membership:
    """What a transport needs to be one worker of several behind one webhook:
    `url` (PostgreSQL, for NOTIFY), `forget` (the App's memory of a user, by user key),
    this worker's name in the leases, how long a chat's lease lasts after its last
    update, how long a silent worker keeps its leases, and how often the inbox is
    polled when no NOTIFY comes (each poll also says this worker is alive)."""

    url: str
    forget: Callable[[str], None]
    worker: str = field(default_factory=lambda: secrets.token_hex(8))
    lease: float = 600.0
    alive: float = 10.0
    poll: float = 1.0


class Timed(Protocol):
    """What owns the one timer (the App)."""

    scheduler: Scheduler


@asynccontextmanager
async def clustered(url: str | None, owner: Timed) -> AsyncIterator[Leadership | None]:
    """With a PostgreSQL `url`: compete for leadership while the block runs, and give
    `owner` a timer whose jobs run only on the leader. Without one (SQLCipher, one
    process) nothing changes: the one process is the leader. Call it before any job is
    added to the timer (before the transports run and the safety jobs start)."""
    if url is None:
        yield None
        return
    leadership = Leadership(url)
    owner.scheduler = LeaderScheduler(lambda: leadership.leading)
    task = asyncio.create_task(leadership.run())
    try:
        yield leadership
    finally:
        await leadership.stop()
        await task


def leader_only(
    make: Callable[[], Transport],
    leadership: Leadership,
    app: App,
    *,
    name: str,
    idempotent: bool,
    prepare: Callable[[], Awaitable[object]] | None = None,
) -> Transport:
    """A transport (Matrix) that runs on the leader alone, and `prepare`, run once at start
    on every worker (Matrix: this worker's device); see `bot.cluster.leader_only`."""
    transport = LeaderOnly(
        make,
        leadership,
        app.db,
        name=name,
        idempotent=idempotent,
        released=app.outbox.release,
        prepare=prepare,
    )
    before = app.outbox.elsewhere
    app.outbox.elsewhere = lambda platform: (
        transport.hand_over() if platform == name else before(platform)
    )
    return transport


def matrix_position(app: App) -> Callable[[str], SharedPosition]:
    """The Matrix account's sync position and handled event ids, one for all workers
    (each leads as a device of its own; see `bot.cluster.matrix_position`)."""
    return partial(SharedPosition, app.db)


@asynccontextmanager
async def delivering(
    app: App, leadership: Leadership | None, url: str | None
) -> AsyncIterator[None]:
    """The outbox while the bot serves. One process resumes every queued row at start;
    one worker of several resumes none itself: the leader adopts what nobody holds
    (`bot.cluster.handover`), so a worker's restart never doubles another's sends."""
    if leadership is None:
        await app.start_delivery()
        yield
        return
    relay = Relay(app.db, leadership, url=url)
    relay.attach(app.outbox)
    handover = OutboxHandover(
        app.db, app.outbox, leadership, app.casework.lost, url=url, relay=relay
    )
    tasks = [asyncio.create_task(handover.run()), asyncio.create_task(relay.run())]
    try:
        yield
    finally:
        await handover.stop()
        await relay.stop()
        await asyncio.gather(*tasks)
