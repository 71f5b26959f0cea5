"""Waking on PostgreSQL's NOTIFY, on a connection of its own that is made again if it breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg

from bot.storage.connection import Connection

__all__ = ["Waking", "listen", "notify"]

log = logging.getLogger("hrd_bot.cluster")


async def listen(url: str, channel: str, wake: Callable[[], None], pause: float) -> None:
    """Call `wake` on every NOTIFY on `channel` (and after each reconnection: one may have
    been missed), until cancelled. `channel` is one of ours, never input."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                wake()
                async for _ in conn.notifies():
                    wake()
        except psycopg.Error as exc:
            log.warning("cluster: %s listener lost (%s); polling", channel, type(exc).__name__)
        await asyncio.sleep(pause)


def notify(channel: str) -> Callable[[Connection], None]:
    """The statement for `Database.run` that wakes `channel`'s listeners (PostgreSQL only)."""

    def run(conn: Connection) -> None:
        if not conn.sqlite:
            conn.execute(f"NOTIFY {channel}")

    return run


class Waking:
    """A loop that runs its step when woken (NOTIFY on `channel` when there is a `url`,
    or `wake`) and at least every `poll` seconds, until `stop`: not by cancelling it,
    since Python 3.11's `wait_for` may swallow a cancel and the stop would hang."""

    def __init__(self, url: str | None, channel: str, poll: float) -> None:
        self._url, self._channel, self._poll = url, channel, poll
        self._wake = asyncio.Event()
        self.stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def run(self, step: Callable[[], Awaitable[None]]) -> None:
        listener = None
        if self._url is not None:
            listener = asyncio.create_task(listen(self._url, self._channel, self.wake, self._poll))
        try:
            while not self.stopping:
                self._wake.clear()
                await step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
