"""Deletes expired messages from chats on a timer, for any transport.

A phone may be seized at any moment, so sensitive replies must disappear on their
own. The ids to delete live in the encrypted `ChatTrail`, so a pending deletion
survives a restart: the first sweep after start-up catches up. The transport only
supplies `delete(chat, message_id)`; Telegram deletes, Matrix redacts. The timer is the
bot's one scheduler (`bot.scheduler`), where each sweeper is the job `sweep:<platform>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.conversation.chat_trail import ChatTrail, Trace
from bot.scheduler import Scheduler

__all__ = ["Delete", "Sweeper"]

log = logging.getLogger("hrd_bot.sweeper")

Delete = Callable[[str, str], Awaitable[bool]]
"""`delete(chat, message_id)`: True once the message is gone or can never be deleted
(the row is dropped); False for a failure worth retrying at the next sweep."""


class Sweeper:
    """One interval job: delete what is due, then prune ids too old to delete any more."""

    def __init__(
        self,
        trail: ChatTrail,
        delete: Delete,
        *,
        interval: timedelta = timedelta(seconds=30),
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trail = trail
        self._delete = delete
        self._interval = interval
        self._batch = batch
        self._clock = clock
        self._scheduler: Scheduler | None = None
        self._running: asyncio.Task[int] | None = None

    async def sweep(self) -> int:
        """One pass; returns how many messages were deleted. Never raises (it runs unattended)."""
        try:
            deleted = await self._delete_due()
            pruned = await self._trail.prune(self._clock())
        except Exception as exc:  # a failed sweep is retried at the next tick
            log.warning("sweep failed: %s", type(exc).__name__)
            return 0
        if deleted or pruned:
            log.info("sweep: %d deleted, %d expired ids pruned", deleted, pruned)
        return deleted

    async def _delete_due(self) -> int:
        """Rows that fail stay for the next sweep; asking for more rows skips past them."""
        now = self._clock()
        failed: set[int] = set()
        deleted = 0
        while True:
            due = await self._trail.due(now, limit=self._batch + len(failed))
            fresh = [trace for trace in due if trace.row not in failed]
            if not fresh:
                return deleted
            done: list[Trace] = []
            for trace in fresh:
                if await self._delete(trace.chat, trace.message_id):
                    done.append(trace)
                else:
                    failed.add(trace.row)
            await self._trail.drop(done)
            deleted += len(done)

    async def _tick(self) -> None:
        """The scheduled job only starts a sweep, so one sweep runs at a time and `stop`
        can end it without the scheduler reporting a cancelled job as an error."""
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self.sweep())

    @property
    def job_id(self) -> str:
        return f"sweep:{self._trail.platform}"

    def start(self, scheduler: Scheduler) -> None:
        """Sweep every interval on `scheduler`, the first time now (to catch up after a restart)."""
        scheduler.every(self.job_id, self._tick, self._interval)
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop the timer and end a sweep in progress (the next start picks up where it was)."""
        if self._scheduler is not None:
            self._scheduler.remove(self.job_id)
            self._scheduler = None
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
            self._running = None
