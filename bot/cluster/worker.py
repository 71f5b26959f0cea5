"""A worker of several on one PostgreSQL: its leadership, and the timer only the leader runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from bot.cluster.leader import Leadership
from bot.cluster.timed import LeaderScheduler
from bot.scheduler import Scheduler

__all__ = ["Timed", "clustered"]


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
