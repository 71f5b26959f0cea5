"""One leader among the workers sharing a PostgreSQL database.

Each worker tries `pg_try_advisory_lock(LEADER)` on a connection of its own (not the
storage connection, whose transactions come and go), every `retry` seconds. PostgreSQL
holds a session lock until that session ends, so the leader is whoever holds it; a
worker that dies, or whose connection breaks, loses it, and another takes it within
`retry` seconds. The leader checks its connection every `heartbeat` seconds and steps
down at the first failure, before anyone else can have taken the lock, unless the
server dropped the session without the leader's connection noticing: for at most one
`heartbeat` two workers may then both think they lead. What the leader does (timed
jobs, Matrix) is safe to run twice in that short window: each job's rows say what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg

__all__ = ["LEADER", "Leadership"]

log = logging.getLogger("hrd_bot.cluster")
LEADER = 0x68726C64  # "hrld": neither of `bot.storage.postgres`'s locks (WRITER, WRITER + 1)
Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class Leadership:
    """Runs `elected` when this worker becomes the leader and `deposed` when it stops being it."""

    def __init__(
        self,
        url: str,
        *,
        elected: Hook = _nothing,
        deposed: Hook = _nothing,
        retry: float = 3.0,
        heartbeat: float = 1.0,
        lock: int = LEADER,
    ) -> None:
        self._url = url
        self._elected, self._deposed = elected, deposed
        self.retry, self.heartbeat, self._lock = retry, heartbeat, lock
        self._stopping = asyncio.Event()
        self.connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self.leading = False
        self.terms = 0
        """How many times this worker was elected (tests, metrics)."""
        self._watchers: list[Callable[[bool], Awaitable[None]]] = []

    def watch(self, hook: Callable[[bool], Awaitable[None]]) -> None:
        """`hook(True)` once elected, `hook(False)` once deposed, after `elected`/`deposed`."""
        self._watchers.append(hook)

    async def run(self) -> None:
        """Until `stop`: connect, try the lock, lead while it holds, and start over."""
        while not self._stopping.is_set():
            try:
                self.connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            except psycopg.OperationalError:
                log.warning("cluster: PostgreSQL not reachable for the leader lock; retrying")
                await self._pause(self.retry)
                continue
            try:
                await self._term(self.connection)
            except psycopg.Error as exc:
                log.warning("cluster: leader lock connection lost (%s)", type(exc).__name__)
            finally:
                await self._step_down()
                with contextlib.suppress(psycopg.Error):
                    await self.connection.close()
            await self._pause(self.retry)

    async def stop(self) -> None:
        """Step down (the lock goes with the connection) and end `run`."""
        self._stopping.set()

    async def _term(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while not await self._try(conn):
            if await self._pause(self.retry):
                return
        self.leading, self.terms = True, self.terms + 1
        log.info("cluster: this worker leads")
        await self._elected()
        for hook in self._watchers:
            await hook(True)
        while not await self._pause(self.heartbeat):
            await conn.execute("SELECT 1")

    async def _try(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> bool:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _step_down(self) -> None:
        if not self.leading:
            return
        self.leading = False
        log.info("cluster: this worker no longer leads")
        await self._deposed()
        for hook in self._watchers:
            await hook(False)

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if stopped; True once stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()
