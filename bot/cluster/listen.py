"""Waking on PostgreSQL's NOTIFY, on a connection of its own that is made again if it breaks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from bot.storage.connection import Connection

__all__ = ["listen", "notify"]

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
