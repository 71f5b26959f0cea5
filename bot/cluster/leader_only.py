"""A transport only the leader runs: Matrix, whose end-to-end device (its keys, its
sessions, its sync position) lives in one process and on that process's disk.

On a follower it runs nothing and sends nothing: the outbox asks `hand_over` (through
its `elsewhere` hook, which `bot.cluster.worker.leader_only` sets) before it queues a
message, leaves the row queued in the database for the leader, and a NOTIFY
(`outbox`) wakes the leader's `OutboxHandover`, which adopts it. When this worker is
elected, a fresh transport is made and run; when it is deposed, that transport stops
and this worker's outbox lets go of the platform's lanes (their rows stay queued).

`prepare` (which never raises) runs once at start, beside the election, leading or not:
Matrix makes and publishes this worker's own device there, so people's clients share
room keys with it before it first leads. The transport is made only after it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.cluster.leader import Leadership
from bot.cluster.listen import notify
from bot.model import ChatRef, Handler, Reply, Transport
from bot.transports.port import Storage

__all__ = ["OUTBOX", "LeaderOnly"]

OUTBOX = "outbox"
"""NOTIFY channel: a row was left queued for the leader."""


class LeaderOnly:
    """Looks like the transport `make` builds; runs one only while this worker leads."""

    def __init__(
        self,
        make: Callable[[], Transport],
        leadership: Leadership,
        db: Storage,
        *,
        name: str,
        idempotent: bool,
        released: Callable[[str], Awaitable[None]],
        prepare: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.name, self.idempotent = name, idempotent
        self._make, self._leadership, self._db = make, leadership, db
        self._released, self._prepare = released, prepare
        self._inner: Transport | None = None
        self._changed = asyncio.Event()
        self._stopping = False
        self._notes: set[asyncio.Task[None]] = set()
        leadership.watch(self._on_change)

    @property
    def connected(self) -> bool:
        """A follower's part (handing over) always works; the leader's transport says."""
        return self._inner.connected if self._inner is not None else True

    def hand_over(self) -> bool:
        """True when another worker sends on this platform: the outbox leaves the row."""
        if self._leadership.leading and self._inner is not None:
            return False
        task = asyncio.get_running_loop().create_task(self._db.run(notify(OUTBOX)))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)
        return True

    async def run(self, handle: Handler) -> None:
        prepared = asyncio.ensure_future(self._prepare()) if self._prepare else None
        try:
            await self._lead(handle, prepared)
        finally:
            if prepared is not None:
                await prepared

    async def _lead(self, handle: Handler, prepared: asyncio.Future[object] | None) -> None:
        while not self._stopping:
            if not self._leadership.leading:
                await self._wait_change()
                continue
            if prepared is not None and not prepared.done():
                await prepared  # one client at a time on this folder's device store
                continue
            inner = self._inner = self._make()
            task = asyncio.create_task(inner.run(handle))
            while self._leadership.leading and not self._stopping and not _failed(task):
                await self._wait_change(None if task.done() else task)
            self._inner = None
            await inner.stop()
            try:
                await task  # a transport that failed stops the bot, as in one process
            finally:
                await self._released(self.name)

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        if self._inner is None:
            raise RuntimeError(f"{self.name} runs on the leader")  # the outbox retries
        return await self._inner.send(chat, reply, key)

    async def stop(self) -> None:
        self._stopping = True
        self._changed.set()

    async def _on_change(self, _leading: bool) -> None:
        self._changed.set()

    async def _wait_change(self, task: asyncio.Task[None] | None = None) -> None:
        waiter = asyncio.create_task(self._changed.wait())
        await asyncio.wait({waiter} | ({task} if task else set()), return_when="FIRST_COMPLETED")
        waiter.cancel()
        self._changed.clear()


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
